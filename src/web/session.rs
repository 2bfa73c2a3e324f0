//! Who is asking (会话): the session cookie or a bearer token becomes an `Auth` in the
//! request's extensions. Cookies are HttpOnly + SameSite=Lax (+ Secure behind https).

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, header, request::Parts},
    middleware::Next,
    response::Response,
};

use super::{AppState, JsonError, page::read_cookie};
use crate::{
    auth::{self, CurrentUser},
    error::AppError,
};

pub const SESSION_COOKIE: &str = "labshare_session";
pub const CSRF_COOKIE: &str = "labshare_csrf";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Via {
    #[default]
    Anonymous,
    Cookie,
    Bearer,
}

/// The request's identity and its CSRF token.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    pub user: Option<Arc<CurrentUser>>,
    pub via: Via,
    /// The raw session cookie or bearer token (to log out or keep it on password change).
    pub token: Option<String>,
    /// The token every state-changing form must carry.
    pub csrf_token: String,
    /// A `Set-Cookie` value for a fresh anonymous CSRF cookie.
    pub set_csrf_cookie: Option<String>,
    /// Unread notifications (the bell), for signed-in browser users.
    pub unread: i64,
}

pub fn set_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn cookie_attrs(state: &AppState) -> &'static str {
    if state.config.secure_cookies {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

pub async fn load_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = state.now();
    let mut auth = Auth::default();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let mut user_id = None;
    let mut stale_cookie = false;
    if let Some(token) = bearer {
        match auth::find_api_token(&state.db, &token, now).await {
            Ok(Some(id)) => {
                user_id = Some(id);
                auth.via = Via::Bearer;
                auth.token = Some(token);
            }
            Ok(None) => {}
            Err(e) => return e.into_json_response(),
        }
    } else if let Some(token) = read_cookie(&req, SESSION_COOKIE) {
        match auth::find_session(&state.db, &token, now).await {
            Ok(Some((id, csrf))) => {
                user_id = Some(id);
                auth.via = Via::Cookie;
                auth.token = Some(token);
                auth.csrf_token = csrf;
            }
            Ok(None) => stale_cookie = true,
            Err(e) => {
                return axum::response::IntoResponse::into_response(super::page::PageError(e));
            }
        }
    }
    if let Some(id) = user_id {
        match auth::load_user(&state.db, id).await {
            Ok(user) => auth.user = user.map(Arc::new),
            Err(e) => return e.into_json_response(),
        }
        if auth.user.is_none() {
            auth.via = Via::Anonymous;
        } else if auth.via == Via::Cookie {
            match crate::notify::unread_count(&state.db, id).await {
                Ok(n) => auth.unread = n,
                Err(e) => {
                    return axum::response::IntoResponse::into_response(super::page::PageError(e));
                }
            }
        }
    }
    if auth.csrf_token.is_empty() {
        match read_cookie(&req, CSRF_COOKIE).filter(|c| c.len() >= 32) {
            Some(c) => auth.csrf_token = c,
            None => {
                let token = auth::random_token();
                auth.set_csrf_cookie =
                    Some(format!("{CSRF_COOKIE}={token}{}", cookie_attrs(&state)));
                auth.csrf_token = token;
            }
        }
    }
    req.extensions_mut().insert(auth);
    let mut res = next.run(req).await;
    if stale_cookie {
        set_cookie(
            &mut res,
            &format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attrs(&state)),
        );
    }
    res
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Auth>().cloned().unwrap_or_default())
    }
}

/// A signed-in user, for pages: anonymous visitors are sent to the login page.
pub struct SignedIn(pub Arc<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = super::page::PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Auth>().and_then(|a| a.user.clone()) {
            Some(u) if parts.extensions.get::<Auth>().map(|a| a.via) == Some(Via::Cookie) => {
                Ok(SignedIn(u))
            }
            _ => Err(super::page::PageError(AppError::Unauthenticated)),
        }
    }
}

/// A signed-in user, for the API: a bearer token is required.
pub struct ApiUser(pub Arc<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for ApiUser {
    type Rejection = super::api::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = parts.extensions.get::<Auth>();
        match auth {
            Some(Auth {
                user: Some(u),
                via: Via::Bearer,
                ..
            }) => Ok(ApiUser(u.clone())),
            _ => Err(super::api::ApiError(AppError::Unauthenticated)),
        }
    }
}
