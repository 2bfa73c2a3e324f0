//! Uploaded files (上传文件): photos and PDFs, type decided by their first bytes (never by
//! the name or the browser's claim), stored under `$LABSHARE_DATA_DIR/uploads/` with random
//! names. Nothing executable is accepted and nothing outside that directory is ever served.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::Row;

use crate::store::WriteQuery;
use crate::{
    auth::{CurrentUser, Permission},
    error::{AppError, Result},
    store::Db,
};

pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_PDF_BYTES: usize = 20 * 1024 * 1024;

/// What an upload may be used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Photo,
    Document,
}

/// A recognised file type: MIME type and the extension we store it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: &'static str,
    pub ext: &'static str,
}

/// Recognise JPEG, PNG, WebP and PDF from their magic bytes; anything else is `None`.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    let t = |content_type, ext| Some(Sniffed { content_type, ext });
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        t("image/jpeg", "jpg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        t("image/png", "png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        t("image/webp", "webp")
    } else if bytes.starts_with(b"%PDF-") {
        t("application/pdf", "pdf")
    } else {
        None
    }
}

/// Check a file for a purpose: its real type and its size. Messages are for the user.
pub fn check(bytes: &[u8], purpose: Purpose) -> Result<Sniffed> {
    let field = match purpose {
        Purpose::Photo => "photo",
        Purpose::Document => "file",
    };
    if bytes.is_empty() {
        return Err(AppError::field(field, "请选择要上传的文件"));
    }
    let sniffed = sniff(bytes);
    match purpose {
        Purpose::Photo => {
            let Some(s) = sniffed.filter(|s| s.content_type.starts_with("image/")) else {
                return Err(AppError::field(
                    field,
                    "照片只能是 JPEG、PNG 或 WebP 图片（按文件内容识别，改扩展名无效）",
                ));
            };
            if bytes.len() > MAX_PHOTO_BYTES {
                return Err(AppError::field(field, "照片不能超过 5 MB"));
            }
            Ok(s)
        }
        Purpose::Document => {
            let Some(s) = sniffed else {
                return Err(AppError::field(
                    field,
                    "附件只能是 PDF 文件或 JPEG、PNG、WebP 图片（按文件内容识别）",
                ));
            };
            let max = if s.ext == "pdf" {
                MAX_PDF_BYTES
            } else {
                MAX_PHOTO_BYTES
            };
            if bytes.len() > max {
                return Err(AppError::field(
                    field,
                    if s.ext == "pdf" {
                        "PDF 文件不能超过 20 MB"
                    } else {
                        "图片不能超过 5 MB"
                    },
                ));
            }
            Ok(s)
        }
    }
}

/// A stored upload.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    pub id: i64,
    pub stored_name: String,
    pub original_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub url: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Upload {
    let stored_name: String = r.get("stored_name");
    Upload {
        id: r.get("id"),
        url: format!("/uploads/{stored_name}"),
        stored_name,
        original_name: r.get("original_name"),
        content_type: r.get("content_type"),
        size_bytes: r.get("size_bytes"),
    }
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// A name we generated: 32 hex digits, a dot and one of our extensions. Anything else
/// (slashes, dots, other extensions) can never name a file we serve.
pub fn is_stored_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    stem.len() == 32
        && stem
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && ["jpg", "png", "webp", "pdf"].contains(&ext)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Keep a display name short and free of path parts and control characters.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        // Bidirectional overrides would let `U+202E fdp.exe` show as `exe.pdf`.
        .filter(|c| !c.is_control() && *c != '"' && !is_bidi_control(*c))
        .take(120)
        .collect();
    if cleaned.trim().is_empty() {
        "附件".into()
    } else {
        cleaned
    }
}

/// 128 random bits as 32 lowercase hex digits.
fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Check and store a file; returns the upload record.
pub async fn store(
    db: &Db,
    data_dir: &Path,
    original_name: &str,
    bytes: &[u8],
    purpose: Purpose,
    user_id: i64,
    now: i64,
) -> Result<Upload> {
    let mut tx = db.begin_write().await?;
    let id = store_in(
        &mut tx,
        data_dir,
        original_name,
        bytes,
        purpose,
        user_id,
        now,
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// Check and write the file, and record it inside the caller's transaction; returns the
/// upload's id. (A rolled-back transaction leaves only an unreferenced file on disk.)
pub async fn store_in(
    conn: &mut crate::store::Conn,
    data_dir: &Path,
    original_name: &str,
    bytes: &[u8],
    purpose: Purpose,
    user_id: i64,
    now: i64,
) -> Result<i64> {
    let sniffed = check(bytes, purpose)?;
    // 平台配置 may set tighter limits than the hard caps `check` applies.
    let limits = crate::settings::load_in(&mut *conn).await?;
    let (limit, what) = if sniffed.ext == "pdf" {
        (limits.pdf_limit_bytes(), "PDF 文件")
    } else {
        (limits.photo_limit_bytes(), "图片")
    };
    if bytes.len() > limit {
        let field = match purpose {
            Purpose::Photo => "photo",
            Purpose::Document => "file",
        };
        return Err(AppError::field(
            field,
            format!("{what}不能超过 {} MB（平台配置）", limit / (1024 * 1024)),
        ));
    }
    let stored_name = format!("{}.{}", random_hex(), sniffed.ext);
    // PostgreSQL (several nodes): the bytes go into the database in the same transaction, so
    // every node serves every file and a rolled-back change leaves nothing behind. SQLite
    // (one node): a file under the data directory.
    let in_database = conn.backend_name() == "PostgreSQL";
    if !in_database {
        let dir = dir(data_dir);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(anyhow::Error::from)?;
        tokio::fs::write(dir.join(&stored_name), bytes)
            .await
            .map_err(anyhow::Error::from)?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO uploads (stored_name, original_name, content_type, size_bytes, uploaded_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&stored_name)
    .bind(clean_name(original_name))
    .bind(sniffed.content_type)
    .bind(bytes.len() as i64)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    if in_database {
        sqlx::query("INSERT INTO upload_blobs (upload_id, bytes) VALUES ($1, $2)")
            .bind(id)
            .bind(bytes.to_vec())
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

pub async fn get(db: &Db, id: i64) -> Result<Upload> {
    let r = sqlx::query(
        "SELECT id, stored_name, original_name, content_type, size_bytes FROM uploads WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(from_row(&r))
}

/// Look up an upload by its stored name and read its bytes.
pub async fn read(db: &Db, data_dir: &Path, stored_name: &str) -> Result<(Upload, Vec<u8>)> {
    if !is_stored_name(stored_name) {
        return Err(AppError::NotFound);
    }
    let r = sqlx::query(
        "SELECT id, stored_name, original_name, content_type, size_bytes FROM uploads \
         WHERE stored_name = $1",
    )
    .bind(stored_name)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let upload = from_row(&r);
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT bytes FROM upload_blobs WHERE upload_id = $1")
            .bind(upload.id)
            .fetch_optional(&db.pool)
            .await?;
    let bytes = match stored {
        Some(b) => b,
        None => tokio::fs::read(dir(data_dir).join(&upload.stored_name))
            .await
            .map_err(|_| AppError::NotFound)?,
    };
    Ok((upload, bytes))
}

/// Photos of an instrument, oldest first.
pub async fn instrument_photos(db: &Db, instrument_id: i64) -> Result<Vec<Upload>> {
    let rows = sqlx::query(
        "SELECT u.id, u.stored_name, u.original_name, u.content_type, u.size_bytes \
         FROM instrument_photos p JOIN uploads u ON u.id = p.upload_id \
         WHERE p.instrument_id = $1 ORDER BY p.created_at, u.id",
    )
    .bind(instrument_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn add_instrument_photo(
    db: &Db,
    instrument_id: i64,
    upload_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO instrument_photos (instrument_id, upload_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(instrument_id)
    .bind(upload_id)
    .bind(now)
    .write(db)
    .await?;
    Ok(())
}

/// Attachments of an article, oldest first.
pub async fn article_attachments(db: &Db, article_id: i64) -> Result<Vec<Upload>> {
    let rows = sqlx::query(
        "SELECT u.id, u.stored_name, u.original_name, u.content_type, u.size_bytes \
         FROM article_attachments a JOIN uploads u ON u.id = a.upload_id \
         WHERE a.article_id = $1 ORDER BY a.created_at, u.id",
    )
    .bind(article_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn add_article_attachment(
    db: &Db,
    article_id: i64,
    upload_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO article_attachments (article_id, upload_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(article_id)
    .bind(upload_id)
    .bind(now)
    .write(db)
    .await?;
    Ok(())
}

/// Whether `user` (or an anonymous visitor) may fetch `upload` at `/uploads/{name}`. Public:
/// photos of approved instruments and attachments of published articles. A draft's photos
/// are for the instrument's unit and its reviewers, an unpublished article's attachments for
/// content managers, a unit rule's attachment for the unit and the platform's unit managers.
/// Everything else — contracts, invoices, testing reports — is never served here, only by the
/// routes of its record, which check who asks.
pub async fn may_read(db: &Db, upload_id: i64, user: Option<&CurrentUser>) -> Result<bool> {
    let photo_units: Vec<(i64, String)> = sqlx::query_as(
        "SELECT i.unit_id, i.review_status FROM instrument_photos p \
         JOIN instruments i ON i.id = p.instrument_id WHERE p.upload_id = $1",
    )
    .bind(upload_id)
    .fetch_all(&db.pool)
    .await?;
    if photo_units.iter().any(|(_, s)| s == "approved") {
        return Ok(true);
    }
    let articles: Vec<String> = sqlx::query_scalar(
        "SELECT r.status FROM article_attachments a JOIN articles r ON r.id = a.article_id \
         WHERE a.upload_id = $1",
    )
    .bind(upload_id)
    .fetch_all(&db.pool)
    .await?;
    if articles.iter().any(|s| s == "published") {
        return Ok(true);
    }
    let Some(user) = user else {
        return Ok(false);
    };
    if photo_units
        .iter()
        .any(|(unit, _)| user.acts_for(*unit, false) || user.can(Permission::InstrumentReview))
    {
        return Ok(true);
    }
    if !articles.is_empty() && user.can(Permission::ContentManage) {
        return Ok(true);
    }
    let rule_units: Vec<i64> =
        sqlx::query_scalar("SELECT unit_id FROM unit_rules WHERE attachment_id = $1")
            .bind(upload_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rule_units
        .iter()
        .any(|unit| user.acts_for(*unit, false) || user.can(Permission::UnitReview)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_windows_executable_named_like_a_photo_is_not_a_photo() {
        let mut exe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
        exe.extend_from_slice(&[0u8; 64]);
        assert!(sniff(&exe).is_none());
        assert!(check(&exe, Purpose::Photo).is_err());
        assert!(check(&exe, Purpose::Document).is_err());
    }

    #[test]
    fn stored_names_cannot_escape_the_upload_directory() {
        assert!(is_stored_name("0123456789abcdef0123456789abcdef.png"));
        assert!(!is_stored_name("../../etc/passwd"));
        assert!(!is_stored_name("0123456789abcdef0123456789abcdef.exe"));
        assert!(!is_stored_name("0123456789abcdef0123456789abcde/.png"));
    }

    #[test]
    fn a_pdf_is_a_document_but_not_a_photo() {
        let pdf = b"%PDF-1.7\n...";
        assert_eq!(
            check(pdf, Purpose::Document).unwrap().content_type,
            "application/pdf"
        );
        assert!(check(pdf, Purpose::Photo).is_err());
    }
}
