//! Our own extractors: rejections become our error format (JSON for the API, a Chinese page
//! for pages), and every page form is checked for its CSRF token.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::*},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::{AppState, api::ApiError, page::PageError, session::Auth};
use crate::error::AppError;

/// JSON body for the API.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(e) => return Err(ApiError(AppError::BadRequest(e.body_text()))),
        };
        if holds_nul(&value) {
            return Err(ApiError(nul_refused()));
        }
        serde_json::from_value::<T>(value)
            .map(ApiJson)
            .map_err(|e| {
                ApiError(AppError::Unprocessable {
                    code: "invalid_body",
                    message: format!("请求字段不正确：{e}"),
                })
            })
    }
}

/// NUL characters are refused in every text a request brings: PostgreSQL cannot store them
/// in text columns (the insert would fail as a 500) and SQLite would keep a value no page
/// can show, so both backends answer the same 422.
fn nul_refused() -> AppError {
    AppError::Unprocessable {
        code: "invalid_character",
        message: "输入内容含有不允许的控制字符（NUL），请删除后重试".into(),
    }
}

fn holds_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Whether a url-encoded body or query string holds a NUL once decoded.
fn urlencoded_holds_nul(bytes: &[u8]) -> bool {
    url::form_urlencoded::parse(bytes).any(|(k, v)| k.contains('\0') || v.contains('\0'))
}

/// Path parameters for the API; a malformed id is "not found".
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError(AppError::NotFound)
    }
}

/// Query string for the API.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

/// Path parameters for pages; a malformed id is a 404 page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(PageError))]
pub struct PagePath<T>(pub T);

impl From<PathRejection> for PageError {
    fn from(_: PathRejection) -> Self {
        PageError(AppError::NotFound)
    }
}

/// Query string for pages; unparsable parts are a 400 page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(PageError))]
pub struct PageQuery<T>(pub T);

impl From<QueryRejection> for PageError {
    fn from(e: QueryRejection) -> Self {
        PageError(AppError::BadRequest(e.body_text()))
    }
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// A url-encoded page form whose `csrf_token` field must match the session's token.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let auth = Auth::from_request_parts(&mut parts, state)
            .await
            .unwrap_or_default();
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| PageError(AppError::BadRequest(e.body_text())))?;
        check_csrf(&auth, &bytes)?;
        if urlencoded_holds_nul(&bytes) {
            return Err(PageError(nul_refused()));
        }
        serde_urlencoded::from_bytes::<T>(&bytes)
            .map(CsrfForm)
            .map_err(|e| PageError(AppError::BadRequest(format!("表单内容无法解析（{e}）"))))
    }
}

fn check_csrf(auth: &Auth, body: &[u8]) -> Result<(), PageError> {
    let field: CsrfField = serde_urlencoded::from_bytes(body).unwrap_or(CsrfField {
        csrf_token: String::new(),
    });
    if auth.csrf_token.is_empty()
        || field.csrf_token.is_empty()
        || !constant_time_eq(field.csrf_token.as_bytes(), auth.csrf_token.as_bytes())
    {
        return Err(PageError(AppError::Csrf));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request's client address: the peer, or — only when the peer is a trusted proxy
/// (`LABSHARE_TRUSTED_PROXIES`) — the right-most `X-Forwarded-For` address that is not itself a
/// trusted proxy. With no proxies trusted (the default) the header is ignored, so a client
/// cannot pick its own address (and escape the login throttle).
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(peer) = peer else {
            return Ok(ClientIp("unknown".into()));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        Ok(ClientIp(
            client_address(peer, &forwarded, &state.config.trusted_proxies).to_string(),
        ))
    }
}

/// Walk the proxy chain from the peer leftwards while the hop is trusted.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded: &[&str],
    trusted: &[crate::config::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => client = ip,
            // A hop we cannot read: stop at the last address we could.
            Err(_) => break,
        }
    }
    client
}

/// One file from a multipart form.
pub struct FormFile {
    pub field: String,
    pub file_name: String,
    pub bytes: Bytes,
}

/// A multipart page form (file uploads) whose `csrf_token` field must match the session's
/// token. Text fields are collected by name (a repeated field: its values joined by
/// newlines); files are kept in memory (routes that accept uploads set their own body limit).
pub struct CsrfMultipart {
    pub fields: std::collections::HashMap<String, String>,
    pub files: Vec<FormFile>,
}

/// Read a multipart body: text fields by name, files in memory.
async fn read_multipart<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(std::collections::HashMap<String, String>, Vec<FormFile>), AppError> {
    let too_big = || AppError::Unprocessable {
        code: "upload_too_large",
        message: "上传的文件过大：照片不超过 5 MB，PDF 不超过 20 MB".into(),
    };
    let mut multipart = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?;
    let mut fields = std::collections::HashMap::new();
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_big());
            }
            Err(e) => return Err(AppError::BadRequest(e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_big());
            }
            Err(e) => return Err(AppError::BadRequest(e.body_text())),
        };
        match file_name {
            Some(file_name) => files.push(FormFile {
                field: name,
                file_name,
                bytes,
            }),
            None if bytes.contains(&0) => return Err(nul_refused()),
            None => {
                fields
                    .entry(name)
                    .and_modify(|v: &mut String| {
                        v.push('\n');
                        v.push_str(&String::from_utf8_lossy(&bytes));
                    })
                    .or_insert_with(|| String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    Ok((fields, files))
}

impl<S: Send + Sync> FromRequest<S> for CsrfMultipart {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let auth = Auth::from_request_parts(&mut parts, state)
            .await
            .unwrap_or_default();
        let req = Request::from_parts(parts, body);
        let (fields, files) = read_multipart(req, state).await.map_err(PageError)?;
        let token = fields.get("csrf_token").map(String::as_str).unwrap_or("");
        if auth.csrf_token.is_empty()
            || token.is_empty()
            || !constant_time_eq(token.as_bytes(), auth.csrf_token.as_bytes())
        {
            return Err(PageError(AppError::Csrf));
        }
        Ok(CsrfMultipart { fields, files })
    }
}

/// A multipart API body (bearer-token callers: no CSRF token). A text field sent several
/// times is kept as its values joined by newlines.
pub struct ApiMultipart {
    pub fields: std::collections::HashMap<String, String>,
    pub files: Vec<FormFile>,
}

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (fields, files) = read_multipart(req, state).await.map_err(ApiError)?;
        Ok(ApiMultipart { fields, files })
    }
}

impl ApiMultipart {
    /// The first non-empty file sent under `field`.
    pub fn file(&self, field: &str) -> Option<&FormFile> {
        self.files
            .iter()
            .find(|f| f.field == field && !f.bytes.is_empty())
    }
}

impl CsrfMultipart {
    /// The first non-empty file sent under `field`.
    pub fn file(&self, field: &str) -> Option<&FormFile> {
        self.files
            .iter()
            .find(|f| f.field == field && !f.bytes.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use crate::config::IpNet;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxies = [IpNet::parse("10.0.0.0/8").unwrap()];
        // No trusted proxy: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.5"), &["1.2.3.4"], &[]),
            ip("10.0.0.5")
        );
        // An untrusted peer cannot speak for someone else.
        assert_eq!(
            client_address(ip("8.8.8.8"), &["1.2.3.4"], &proxies),
            ip("8.8.8.8")
        );
        // Behind the proxy: the right-most untrusted address, not the spoofable left-most.
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &["6.6.6.6", " 1.2.3.4", "10.0.0.9"],
                &proxies
            ),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &["junk"], &proxies),
            ip("10.0.0.5")
        );
    }
}
