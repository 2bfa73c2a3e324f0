//! Observability: `/metrics` in the Prometheus format, request ids, `/healthz` and `/readyz`.

use crate::common::spawn_app;

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_backlogs() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let (status, _) = app
            .api("GET", "/api/v1/instruments/999999", None, None)
            .await;
        assert_eq!(status, 404);
    }
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Every response carries a request id (also logged with the request's span).
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.len() >= 32, "{id}");
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = res.text().await.unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/api/v1/instruments/{id}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no request counter for the route:\n{body}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{line}");
    assert!(
        body.contains("http_request_duration_seconds_bucket{"),
        "{body}"
    );
    for gauge in [
        "labshare_db_pool_connections",
        "labshare_search_backlog",
        "labshare_mail_backlog",
        "labshare_workflow_events_backlog",
    ] {
        assert!(body.contains(gauge), "{gauge} missing");
    }
    let (status, body) = app.api("GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "{body}");
}
