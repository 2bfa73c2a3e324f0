//! Server-rendered pages (页面). A handler returns a `Page` (template + context); the
//! `render_pages` middleware renders it with the shared context: the signed-in user, the
//! CSRF token, the console sidebar and a one-shot flash message.

use std::{path::Path, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use minijinja::{Environment, Value, context};

use super::{
    AppState, ErrorStatus,
    session::{Auth, set_cookie},
};
use crate::error::AppError;

pub(super) const FLASH_COOKIE: &str = "labshare_flash";

/// Build a template context from `key => value` pairs; any `Serialize` value will do.
#[macro_export]
macro_rules! ctx {
    ($($key:ident => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = std::collections::BTreeMap::<String, minijinja::Value>::new();
        $( map.insert(stringify!($key).to_string(), minijinja::Value::from(minijinja::value::Serde(&$value))); )*
        minijinja::Value::from(minijinja::value::Serde(&map))
    }};
}

/// A page to render: its template, its own context and its status.
#[derive(Clone)]
pub struct Page {
    pub template: &'static str,
    pub context: Value,
    pub status: StatusCode,
}

impl Page {
    pub fn new(template: &'static str, context: Value) -> Page {
        Page {
            template,
            context,
            status: StatusCode::OK,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Page {
        self.status = status;
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(Arc::new(self));
        res
    }
}

/// An error shown as a Chinese HTML page (or a login redirect when not signed in).
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

#[derive(Clone, Debug)]
struct PendingError {
    code: &'static str,
    message: String,
    status: StatusCode,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let pending = PendingError {
            code: self.0.code(),
            message: self.0.to_string(),
            status: self.0.status(),
        };
        let mut res = pending.status.into_response();
        res.extensions_mut().insert(pending);
        res
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// Redirect after a successful POST, with a message shown once on the next page.
/// The pagination block the `pagination` macro renders: page, pages, total, prev/next.
pub fn pager(page: i64, total: i64, per_page: i64) -> Value {
    let pages = ((total + per_page - 1) / per_page).max(1);
    crate::ctx! { page => page, pages => pages, total => total,
    has_prev => page > 1, has_next => page < pages }
}

/// A file name for `filename*=UTF-8''…` (RFC 5987): unreserved bytes kept, the rest %-encoded.
pub fn encode_filename(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An xlsx file as a download: `ascii_name` for old clients, `name` (may be Chinese) for the rest.
pub fn xlsx_download(bytes: Vec<u8>, ascii_name: &str, name: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{}",
                    encode_filename(name)
                ),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// What to tell the user about a refusal they can act on (invalid input, a conflict, a rule
/// that says no); `None` for errors that are not theirs to fix.
pub fn refusal(e: &AppError) -> Option<String> {
    match e {
        AppError::Validation { fields, .. } => {
            Some(fields.values().cloned().collect::<Vec<_>>().join("；"))
        }
        AppError::Conflict { .. } | AppError::Unprocessable { .. } => Some(e.to_string()),
        AppError::Problems { .. } => Some(e.to_string()),
        _ => None,
    }
}

pub fn redirect_with_flash(to: &str, message: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.extensions_mut()
        .insert(FlashMessage(message.to_string()));
    res
}

/// A flash message to set as a cookie on the way out (by `render_pages`, which knows whether
/// cookies must be `Secure`).
#[derive(Clone)]
struct FlashMessage(String);

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only local paths are acceptable `next=` targets: `/x` but never `//host` or `/\host`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) && is_local_path(&percent_decoded(n)) => n.to_string(),
        _ => "/console".to_string(),
    }
}

/// A same-origin path: one leading `/`, then no `/` or `\` right after it, no backslash
/// anywhere, no control character (browsers drop TAB/CR/LF, which turns `/\t/x` into `//x`)
/// and no scheme.
fn is_local_path(n: &str) -> bool {
    n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && !n.chars().any(char::is_control)
        && !n.contains("://")
}

/// `n` with its `%XX` escapes decoded (lossily), so encoded tricks are checked as well.
fn percent_decoded(n: &str) -> String {
    let bytes = n.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The console sidebar: the sidebar entries of the route tables the user may see.
fn console_nav(auth: &Auth) -> Vec<super::routes::SidebarItem> {
    match &auth.user {
        Some(user) => super::routes::sidebar(user),
        None => vec![],
    }
}

/// Render pending pages and error pages with the shared context.
pub async fn render_pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let auth = req.extensions().get::<Auth>().cloned().unwrap_or_default();
    let flash = read_cookie(&req, FLASH_COOKIE).map(|v| {
        url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let mut res = next.run(req).await;
    let attrs = super::session::cookie_attrs(&state);
    if let Some(FlashMessage(message)) = res.extensions_mut().remove::<FlashMessage>() {
        set_cookie(
            &mut res,
            &format!("{FLASH_COOKIE}={}{attrs}; Max-Age=60", urlencode(&message)),
        );
    }

    if let Some(err) = res.extensions_mut().remove::<PendingError>() {
        if err.status == StatusCode::UNAUTHORIZED && err.code == "unauthenticated" {
            return Redirect::to(&format!("/login?next={}", urlencode(&path_and_query)))
                .into_response();
        }
        let page = Page::new(
            "error.html",
            crate::ctx! { code => err.code, message => err.message, status => err.status.as_u16() },
        )
        .with_status(err.status);
        return render(
            &state,
            &page,
            &auth,
            &path,
            &path_and_query,
            flash.as_deref(),
            true,
        );
    }
    if let Some(page) = res.extensions_mut().remove::<Arc<Page>>() {
        let mut out = render(
            &state,
            &page,
            &auth,
            &path,
            &path_and_query,
            flash.as_deref(),
            flash.is_some(),
        );
        for cookie in res.headers().get_all(header::SET_COOKIE) {
            out.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        return out;
    }
    res
}

fn render(
    state: &AppState,
    page: &Page,
    auth: &Auth,
    path: &str,
    path_and_query: &str,
    flash: Option<&str>,
    clear_flash: bool,
) -> Response {
    let nav = console_nav(auth);
    let nav_current = super::routes::current_entry(&nav, path, path_and_query);
    let site = state.db.published.settings();
    let base = crate::ctx! {
        current_user => auth.user.as_deref(),
        unread => auth.unread,
        csrf_token => &auth.csrf_token,
        path => path,
        flash => flash,
        console_nav => nav,
        nav_current => nav_current,
        site_name => site.site_name,
        site => &*site,
    };
    let ctx = context! { ..page.context.clone(), ..base };
    let html = state
        .templates
        .get_template(page.template)
        .and_then(|t| t.render(ctx));
    let mut res = match html {
        Ok(html) => (page.status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = page.template, error = %e, detail = ?e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><meta charset=utf-8><title>服务器错误</title><h1>服务器内部错误</h1><p>页面暂时无法显示，请稍后再试。</p>".to_string()),
            )
                .into_response()
        }
    };
    if clear_flash {
        let attrs = super::session::cookie_attrs(state);
        set_cookie(&mut res, &format!("{FLASH_COOKIE}={attrs}; Max-Age=0"));
    }
    if let Some(cookie) = &auth.set_csrf_cookie {
        set_cookie(&mut res, cookie);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub fn read_cookie(req: &Request, name: &str) -> Option<String> {
    read_cookie_headers(req.headers(), name)
}

pub fn read_cookie_headers(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The page template environment: the shared filters plus `page_url` for pagination links.
pub fn template_env(dir: &Path) -> Environment<'static> {
    let mut env = crate::templating::base_env(dir);
    env.add_function("page_url", |path: String, query: Value, page: i64| {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Ok(iter) = query.try_iter() {
            for k in iter {
                let key = k.to_string();
                if key == "page" {
                    continue;
                }
                if let Ok(v) = query.get_item(&k)
                    && !v.is_undefined()
                    && !v.is_none()
                    && !v.to_string().is_empty()
                {
                    pairs.push((key, v.to_string()));
                }
            }
        }
        pairs.push(("page".into(), page.to_string()));
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{path}?{qs}")
    });
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_redirects_only_to_local_paths() {
        assert_eq!(safe_next(Some("/console/units")), "/console/units");
        assert_eq!(safe_next(Some("//evil.example")), "/console");
        assert_eq!(safe_next(Some("/\\evil.example")), "/console");
        assert_eq!(safe_next(Some("https://evil.example")), "/console");
        assert_eq!(safe_next(Some("/x?u=https://a")), "/console");
        assert_eq!(safe_next(None), "/console");
        for evil in [
            "/\t/evil.example",
            "/\r\n/evil.example",
            "/\\evil",
            "/a\\b",
            "//evil",
            "/%09/evil",
            "/%2F/evil",
            "/%5Cevil",
            " /x",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(evil)), "/console", "{evil:?}");
        }
        assert_eq!(
            safe_next(Some("/console/a?b=%E4%B8%AD")),
            "/console/a?b=%E4%B8%AD"
        );
    }
}
