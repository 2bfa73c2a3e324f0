//! Serving the public portal pages from the page cache ([`crate::pagecache`]): home, the
//! instrument list, search and instrument pages, for visitors who are not signed in and have
//! no message waiting. The middleware sits inside `load_auth` (it knows who asks) and outside
//! `render_pages` (it stores the rendered HTML). Every request reads the current content
//! version; a page rendered at another version is rendered again.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AppState, page::read_cookie, session::Auth};
use crate::pagecache::{self, MAX_ENTRY_BYTES, Version};

/// `x-page-cache: hit | miss` tells tests and benchmarks what happened.
pub const CACHE_HEADER: &str = "x-page-cache";

/// The cached pages: `/`, `/instruments`, `/search` and `/instruments/{id}`.
pub fn cacheable(path: &str) -> bool {
    match path {
        "/" | "/instruments" | "/search" => true,
        _ => path.strip_prefix("/instruments/").is_some_and(|id| {
            !id.is_empty() && id.len() < 20 && id.bytes().all(|b| b.is_ascii_digit())
        }),
    }
}

async fn current_version(state: &AppState) -> crate::error::Result<Version> {
    Ok((
        pagecache::db_version(&state.db).await?,
        state.search.generation(),
    ))
}

pub async fn serve_cached(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let pages = &state.pages;
    let anonymous = req
        .extensions()
        .get::<Auth>()
        .is_some_and(|a| a.user.is_none());
    if !pages.enabled()
        || req.method() != Method::GET
        || !anonymous
        || !cacheable(req.uri().path())
        || read_cookie(&req, super::page::FLASH_COOKIE).is_some()
    {
        return next.run(req).await;
    }
    let key = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let version = match current_version(&state).await {
        Ok(v) => v,
        // Without a version nothing can be proved current: render as if there were no cache.
        Err(e) => {
            e.log();
            return next.run(req).await;
        }
    };
    let csrf_cookie = req
        .extensions()
        .get::<Auth>()
        .and_then(|a| a.set_csrf_cookie.clone());
    if let Some(entry) = pages.get(&key, version) {
        let mut res = (StatusCode::OK, Body::from(entry.body.clone())).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        // What `render_pages` does for a first visit: hand out the CSRF cookie.
        if let Some(cookie) = csrf_cookie
            && let Ok(v) = HeaderValue::from_str(&cookie)
        {
            h.append(header::SET_COOKIE, v);
        }
        return res;
    }
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if res.status() != StatusCode::OK || !html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ENTRY_BYTES * 4).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "page cache: could not read a rendered page");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    pages.put(&key, version, bytes.clone());
    parts
        .headers
        .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_public_pages_are_cacheable() {
        for p in ["/", "/instruments", "/search", "/instruments/12"] {
            assert!(cacheable(p), "{p}");
        }
        for p in [
            "/instruments/12/book",
            "/instruments/",
            "/instruments/x",
            "/console",
            "/login",
            "/api/v1/search",
        ] {
            assert!(!cacheable(p), "{p}");
        }
    }
}
