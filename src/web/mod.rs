//! The web layer (网页与接口): axum routers, extractors, pages and the JSON API. It calls the
//! domain modules and the store; nothing below it knows about HTTP.

pub mod account;
pub mod api;
pub mod booking_pages;
pub mod booking_plus_api;
pub mod bookings;
pub mod cache;
pub mod changes;
pub mod charts;
pub mod console;
pub mod consultations;
pub mod content_admin;
pub mod dashboard;
pub mod docking;
pub mod email_actions;
pub mod evaluations;
pub mod experts;
pub mod extract;
pub mod instruments;
pub mod memberships;
pub mod metrics;
pub mod money_api;
pub mod notifications;
pub mod open_data;
pub mod openapi;
pub mod page;
pub mod portal;
pub mod records;
pub mod redemptions;
pub mod reports;
pub mod routes;
pub mod search;
pub mod service_records;
pub mod session;
pub mod settings;
pub mod settlements;
pub mod statistics;
pub mod testing;
pub mod transfer;
pub mod uploads;
pub mod workflows;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware,
    response::{IntoResponse, Response},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::{app::App, error::AppError};

/// Shared by every handler: the services context plus the page templates. It dereferences
/// to `App`, so a handler passes `&state` wherever the domain asks for `&App`.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// This node's cache of rendered public pages (issue 19).
    pub pages: Arc<crate::pagecache::PageCache>,
}

impl AppState {
    /// Wrap the services context and compile the page templates' environment.
    pub fn new(app: App) -> AppState {
        let templates = Arc::new(page::template_env(&app.config.templates_dir));
        let pages = Arc::new(crate::pagecache::PageCache::from_env());
        AppState {
            app,
            templates,
            pages,
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// Every page's policy: scripts, styles, images and requests from this origin only (the
/// templates carry no inline script or style; `static/site.js` holds their handlers), never
/// framed, forms posting only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Build the whole application.
pub fn app(state: AppState) -> Router {
    let static_files = Router::new()
        .fallback_service(ServeDir::new(&state.config.static_dir))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ));
    Router::new()
        .merge(routes::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            settings::keep_published_fresh,
        ))
        .nest_service("/static", static_files)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            page::render_pages,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cache::serve_cached,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::load_auth,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Uploads set their own, stricter (sandboxed) policy.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(CompressionLayer::new())
        .route_layer(middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| "<unmatched>".into());
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), route = %route, request_id = %request_id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal(anyhow::anyhow!("handler panicked")).into_json_response()
        }))
        .with_state(state)
}

/// This module's own table: liveness and readiness.
fn routes() -> Vec<routes::Route> {
    vec![
        routes::Route::get("/healthz", routes::Access::Public, healthz),
        routes::Route::get("/readyz", routes::Access::Public, readyz),
        // Loopback or `LABSHARE_METRICS_TOKEN` only (checked by the handler).
        routes::Route::get("/metrics", routes::Access::Public, metrics::metrics_page),
    ]
}

/// Ready to serve (`/readyz`): the database answers and this node's search index has applied
/// the whole change log since it started (a restarted node catches up first).
async fn readyz(State(state): State<AppState>) -> Response {
    let db = tokio::time::timeout(Duration::from_secs(3), state.db.ping())
        .await
        .unwrap_or(false);
    let search = state.search.is_caught_up();
    let ok = db && search;
    let body = serde_json::json!({"status": if ok { "ready" } else { "not_ready" }, "database": db, "search": search});
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let ok = tokio::time::timeout(Duration::from_secs(3), state.db.ping())
        .await
        .unwrap_or(false);
    let body = serde_json::json!({"status": if ok { "ok" } else { "unavailable" }, "database": ok});
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        AppError::NotFound.into_json_response()
    } else {
        page::PageError(AppError::NotFound).into_response()
    }
}

/// An error's HTTP status as axum's type.
pub trait ErrorStatus {
    fn status(&self) -> axum::http::StatusCode;
}

impl ErrorStatus for AppError {
    fn status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::from_u16(self.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Rendering an error for the API.
pub trait JsonError {
    fn into_json_response(self) -> Response;
}

impl JsonError for AppError {
    /// The contract's JSON error body with the right status.
    fn into_json_response(self) -> Response {
        self.log();
        let mut error = serde_json::json!({"code": self.code(), "message": self.to_string()});
        if let Some(fields) = self.field_errors() {
            error["fields"] = serde_json::to_value(fields).unwrap_or_default();
        }
        if let Some(details) = self.details() {
            error["details"] = details.clone();
        }
        (
            self.status(),
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response()
    }
}
