//! Testing-service orders (送样检测): order → quote → confirm with vouchers → report → complete,
//! never blocking the calendar, with the report visible to the two parties only.

use serde_json::json;

use crate::money::{grant, world};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

#[tokio::test]
async fn a_testing_order_is_quoted_paid_with_vouchers_and_completed_with_its_report() {
    let w = world("high_tech").await;
    let app = &w.app;
    grant(&w, 2026).await;
    let owner_unit: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let service: i64 = sqlx::query_scalar(
        "INSERT INTO services (unit_id, name, category, price_fen, sample_requirements, turnaround_days, review_status, created_at, updated_at) \
         VALUES ($1, '金属材料成分分析', '材料检测', 150000, '块状样品不小于 10×10 mm', 5, 'approved', 0, 0) RETURNING id",
    )
    .bind(owner_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();

    // Validation: sample details, an instrument of the testing unit.
    let (status, body) = app
        .api("POST", "/api/v1/testing-orders", Some(&w.user), Some(json!({
            "service_id": service, "unit_id": w.user_unit, "instrument_id": 999_999, "sample_info": "", "sample_count": 0
        })))
        .await;
    assert_eq!(status, 422, "{body}");
    let f = &body["error"]["fields"];
    assert!(
        f["instrument_id"].is_string()
            && f["sample_info"].is_string()
            && f["sample_count"].is_string(),
        "{f}"
    );
    let (status, o) = app
        .api(
            "POST",
            "/api/v1/testing-orders",
            Some(&w.user),
            Some(json!({
                "service_id": service, "unit_id": w.user_unit, "instrument_id": w.instrument,
                "sample_info": "304 不锈钢板 3 块，测 Cr、Ni 含量", "sample_count": 3
            })),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    assert_eq!(
        (o["status"].as_str(), o["kind"].as_str()),
        (Some("requested"), Some("testing"))
    );
    let id = o["id"].as_i64().unwrap();

    // It waits on the owner's 工作台.
    let owner_page = app.browser_login("owner").await;
    let (_, html) = app.get_page(&owner_page, "/console").await;
    assert!(html.contains("预约待报价"), "{html}");

    // It holds no slot: the instrument can still be booked at any time.
    let (status, b) = app
        .api("POST", "/api/v1/bookings", Some(&w.user), Some(json!({
            "instrument_id": w.instrument, "unit_id": w.user_unit, "start": "2026-12-02T09:00:00+08:00",
            "end": "2026-12-02T10:00:00+08:00", "purpose": "形貌观察"
        })))
        .await;
    assert_eq!(status, 201, "{b}");

    // In the orderer's calendar feed it is an all-day event on the day the report is due.
    let buyer_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'buyer'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let feed = labshare::feeds::ics(&app.db, buyer_id, "买方", app.now())
        .await
        .unwrap();
    assert!(
        feed.contains("DTSTART;VALUE=DATE:20261206") && feed.contains("送样检测：金属材料成分分析"),
        "{feed}"
    );

    let post = |path: String, token: String, body: serde_json::Value| async move {
        app.api("POST", &path, Some(&token), Some(body)).await
    };
    let (status, _) = post(
        format!("/api/v1/bookings/{id}/quote"),
        w.owner.clone(),
        json!({"price": "2000.00"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        format!("/api/v1/bookings/{id}/confirm"),
        w.user.clone(),
        json!({"voucher_amount": "800.01"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("voucher_over_ratio"))
    );
    let (status, _) = post(
        format!("/api/v1/bookings/{id}/confirm"),
        w.user.clone(),
        json!({"voucher_amount": "800.00"}),
    )
    .await;
    assert_eq!(status, 200);

    // No report, no completion; the report must be a PDF.
    let (status, body) = post(
        format!("/api/v1/bookings/{id}/complete"),
        w.owner.clone(),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("report_required"))
    );
    let put = |token: &str, bytes: &'static [u8]| {
        app.client
            .put(app.url(&format!("/api/v1/bookings/{id}/report?name=检测报告.pdf")))
            .bearer_auth(token)
            .header("content-type", "application/pdf")
            .body(bytes)
            .send()
    };
    let res = put(&w.user, PDF).await.unwrap();
    assert_eq!(
        res.status(),
        403,
        "only the testing unit uploads the report"
    );
    // Another unit's manager (who may handle bookings in general) is refused before the
    // file is stored: nothing lands on disk or in `uploads`.
    app.create_user("stranger_lab", "unit_manager").await;
    let stranger = app.token("stranger_lab").await;
    let stored_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let files_before = std::fs::read_dir(app.state.config.data_dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    let res = put(&stranger, PDF).await.unwrap();
    assert_eq!(res.status(), 403);
    let stored_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let files_after = std::fs::read_dir(app.state.config.data_dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!((stored_after, files_after), (stored_before, files_before));
    let res = put(&w.owner, b"MZ not a pdf").await.unwrap();
    assert_eq!(res.status(), 422);
    let res = put(&w.owner, PDF).await.unwrap();
    assert_eq!(res.status(), 200);
    let (status, done) = post(
        format!("/api/v1/bookings/{id}/complete"),
        w.owner.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done["service_record"]["order_no"]
            .as_str()
            .unwrap()
            .starts_with("FW")
    );
    let (amount, voucher, hours, instrument): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT amount_fen, voucher_fen, service_hours_x100, instrument_id FROM service_records WHERE booking_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (amount, voucher, hours, instrument),
        (200_000, 80_000, 0, w.instrument)
    );

    // Both parties can download the report; nobody else can.
    for who in ["buyer", "owner"] {
        let client = app.browser_login(who).await;
        let res = client
            .get(app.url(&format!("/console/bookings/{id}/report")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{who}");
        assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
    }
    app.create_user("stranger", "user").await;
    let client = app.browser_login("stranger").await;
    let res = client
        .get(app.url(&format!("/console/bookings/{id}/report")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The order shows on both sides' pages.
    let buyer = app.browser_login("buyer").await;
    let (_, html) = app.get_page(&buyer, "/console/my-bookings").await;
    assert!(
        html.contains("送样检测")
            && html.contains("金属材料成分分析")
            && html.contains("下载检测报告"),
        "{html}"
    );
    let (_, html) = app
        .get_page(&buyer, "/console/service-records?year=2026")
        .await;
    assert!(
        html.contains("2,000.00") && html.contains("800.00") && html.contains("未评价"),
        "{html}"
    );
    let owner = app.browser_login("owner").await;
    let (_, html) = app
        .get_page(&owner, "/console/service-records?side=provider&year=2026")
        .await;
    assert!(
        html.contains("许昌测试企业")
            && html.contains(done["service_record"]["order_no"].as_str().unwrap()),
        "{html}"
    );
    let (_, html) = app
        .get_page(&buyer, &format!("/services/{service}/order"))
        .await;
    assert!(html.contains("提交委托"), "{html}");
}
