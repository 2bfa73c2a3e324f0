//! One error type (错误) for the whole platform. Domain code returns `AppError`; the web
//! layer renders it as the contract's JSON under `/api/v1` or as a Chinese HTML page (its
//! `IntoResponse` lives in `web`).

use std::collections::BTreeMap;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Field name → message in Chinese.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("未找到该记录")]
    NotFound,
    #[error("请先登录")]
    Unauthenticated,
    #[error("用户名或密码错误")]
    InvalidCredentials,
    #[error("您没有执行此操作的权限")]
    Forbidden { code: &'static str },
    #[error("页面已过期或请求来源不可信，请刷新页面后重试")]
    Csrf,
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 422 with a list of problems beside the message (`details`), e.g. `report_invalid`.
    #[error("{message}")]
    Problems {
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
    #[error("{message}")]
    TooManyRequests { message: String },
    #[error("请求格式不正确：{0}")]
    BadRequest(String),
    #[error("数据库错误")]
    Database(sqlx::Error),
    #[error("服务器内部错误")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    /// A deferred compare-and-swap that lost its race (`store::Unexpected`) is the caller's
    /// conflict; any other database error is a database error.
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && let Some(lost) = db.try_downcast_ref::<crate::store::Unexpected>()
        {
            return AppError::conflict(lost.expect.code, lost.expect.message);
        }
        AppError::Database(err)
    }
}

impl AppError {
    pub fn forbidden() -> Self {
        AppError::Forbidden { code: "forbidden" }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// A validation error for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), message.clone());
        AppError::Validation { message, fields }
    }

    /// A validation error for several fields; `None` when there are none.
    pub fn fields(fields: FieldErrors) -> Option<Self> {
        if fields.is_empty() {
            return None;
        }
        Some(AppError::Validation {
            message: "提交的信息有误，请按提示修改".into(),
            fields,
        })
    }

    /// The HTTP status code the contract gives this error (the web layer turns it into a
    /// response; nothing here knows about HTTP types).
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::NotFound => 404,
            AppError::Unauthenticated | AppError::InvalidCredentials => 401,
            AppError::Forbidden { .. } | AppError::Csrf => 403,
            AppError::Validation { .. }
            | AppError::Unprocessable { .. }
            | AppError::Problems { .. } => 422,
            AppError::Conflict { .. } => 409,
            AppError::TooManyRequests { .. } => 429,
            AppError::BadRequest(_) => 400,
            AppError::Database(_) | AppError::Internal(_) => 500,
        }
    }

    /// The contract's snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Unauthenticated => "unauthenticated",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Forbidden { code } => code,
            AppError::Csrf => "csrf_failed",
            AppError::Validation { .. } => "validation_failed",
            AppError::Conflict { code, .. }
            | AppError::Unprocessable { code, .. }
            | AppError::Problems { code, .. } => code,
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::BadRequest(_) => "bad_request",
            AppError::Database(_) | AppError::Internal(_) => "internal_error",
        }
    }

    pub fn details(&self) -> Option<&serde_json::Value> {
        match self {
            AppError::Problems { details, .. } => Some(details),
            _ => None,
        }
    }

    pub fn field_errors(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Validation { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// Log server-side failures with their cause; client errors are not logged as errors.
    pub fn log(&self) {
        match self {
            AppError::Database(e) => tracing::error!(error = %e, "database error"),
            AppError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            _ => {}
        }
    }
}

/// Map a unique-constraint violation to a field error, anything else to a database error.
pub fn on_unique(err: sqlx::Error, field: &str, message: &str) -> AppError {
    if crate::store::is_unique_violation(&err) {
        AppError::field(field, message)
    } else {
        AppError::Database(err)
    }
}
