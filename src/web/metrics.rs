//! Metrics (运行指标) in the Prometheus text format at `GET /metrics`: requests by route and
//! status with latency histograms (recorded by `track`), the database pool, the backlogs of
//! the search change log, mail and workflow events, and job runs (recorded in `jobs`).
//! Served to loopback clients, or to anyone presenting `LABSHARE_METRICS_TOKEN`.

use std::{net::SocketAddr, sync::OnceLock, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide recorder (one per process, also when tests start several apps).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// Install the recorder at start-up so that nothing recorded before the first scrape is lost.
pub fn init() {
    let _ = handle();
}

/// Count each request and time it, keyed by the matched route (not the raw path).
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".into());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`.
pub async fn metrics_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let token = std::env::var("LABSHARE_METRICS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (&token, presented) {
        (Some(t), Some(p)) => same_secret(t.as_bytes(), p.as_bytes()),
        (Some(_), None) | (None, _) => peer.ip().is_loopback() && token.is_none(),
    };
    if !allowed {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let Some(h) = handle() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable\n").into_response();
    };
    record_gauges(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        h.render(),
    )
        .into_response()
}

/// Compare a presented secret without an early exit on the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Values read at scrape time.
async fn record_gauges(state: &AppState) {
    let pool = &state.db.pool;
    metrics::gauge!("labshare_db_pool_connections").set(pool.size() as f64);
    metrics::gauge!("labshare_db_pool_idle").set(pool.num_idle() as f64);
    if let Ok(n) = state.search.backlog(&state.db).await {
        metrics::gauge!("labshare_search_backlog").set(n as f64);
    }
    metrics::gauge!("labshare_search_ready").set(if state.search.is_caught_up() {
        1.0
    } else {
        0.0
    });
    if let Ok(b) = crate::mail::backlog(&state.db).await {
        metrics::gauge!("labshare_mail_backlog").set(b.pending as f64);
        metrics::gauge!("labshare_mail_failed").set(b.failed as f64);
    }
    if let Ok(n) = crate::notify::events_backlog(&state.db).await {
        metrics::gauge!("labshare_workflow_events_backlog").set(n as f64);
    }
}
