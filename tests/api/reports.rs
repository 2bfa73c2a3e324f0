//! 信息上报 and 数据对接: batches in the national schema with the national rules' problems,
//! the platform's review, the push to a real upstream HTTP server started here (which refuses
//! the first attempt), and the scoped docking reads.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::HeaderMap, http::Uri, response::IntoResponse};
use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit, credit_code, spawn_app_with};

/// Tuesday 1 December 2026, 08:00 in Xuchang: quarter 2026Q4.
pub(crate) const NOW: &str = "2026-12-01T08:00:00+08:00";
pub(crate) const PUBLIC: &str = "https://labshare.example";

/// What the upstream platform received: path, headers and body of every request.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) idempotency_key: String,
    pub(crate) authorization: String,
    pub(crate) body: Value,
}

#[derive(Default)]
pub(crate) struct Upstream {
    pub(crate) received: Mutex<Vec<Received>>,
    /// How many requests to refuse with a 503 first.
    pub(crate) refuse_first: usize,
    /// innerIds to reject, with the reason.
    pub(crate) reject: Mutex<Vec<(String, String)>>,
}

async fn upstream_handler(
    State(up): State<Arc<Upstream>>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let n = {
        let mut r = up.received.lock().unwrap();
        r.push(Received {
            path: uri.path().to_string(),
            idempotency_key: h("idempotency-key"),
            authorization: h("authorization"),
            body: body.clone(),
        });
        r.len()
    };
    if n <= up.refuse_first {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "维护中").into_response();
    }
    let key = if uri.path().ends_with("/instruments") {
        "innerId"
    } else {
        "recordInnerId"
    };
    let ids: Vec<String> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect();
    let reject = up.reject.lock().unwrap().clone();
    let rejected: Vec<Value> = reject
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(id, reason)| json!({"innerId": id, "reason": reason}))
        .collect();
    let accepted: Vec<&String> = ids
        .iter()
        .filter(|i| !reject.iter().any(|(r, _)| r == *i))
        .collect();
    Json(json!({"accepted": accepted, "rejected": rejected})).into_response()
}

/// A real HTTP server on port 0 standing in for the provincial docking endpoint.
pub(crate) async fn start_upstream(up: Upstream) -> (String, Arc<Upstream>) {
    let up = Arc::new(up);
    let app = axum::Router::new()
        .route("/national/{*rest}", axum::routing::post(upstream_handler))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/national"), up)
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) owner: String,
    pub(crate) admin: String,
    pub(crate) unit: i64,
}

pub(crate) async fn world(upstream_url: Option<&str>) -> World {
    world_with(upstream_url, &[]).await
}

/// The world with more configuration (`LABSHARE_…` pairs).
pub(crate) async fn world_with(upstream_url: Option<&str>, extra: &[(&str, &str)]) -> World {
    let mut vars = vec![
        ("LABSHARE_NOW", NOW),
        ("LABSHARE_PUBLIC_URL", PUBLIC),
        ("LABSHARE_UPSTREAM_TOKEN", "upstream-secret"),
        ("LABSHARE_UPSTREAM_BACKOFF_MS", "100"),
        ("LABSHARE_UPSTREAM_POLL_MS", "50"),
    ];
    if let Some(u) = upstream_url {
        vars.push(("LABSHARE_UPSTREAM_URL", u));
    }
    vars.extend_from_slice(extra);
    let app = spawn_app_with(&vars).await;
    app.create_user("owner", "unit_manager").await;
    app.create_user("padmin", "platform_admin").await;
    let owner = app.token("owner").await;
    let admin = app.token("padmin").await;
    let unit = certified_unit(&app, &owner, "许昌测试大学", 201, "managing", "other").await;
    World {
        app,
        owner,
        admin,
        unit,
    }
}

/// An approved instrument (Arrange), `value_fen` of original value.
pub(crate) async fn instrument(
    w: &World,
    name: &str,
    code: &str,
    value_fen: i64,
    customs: bool,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, joined_on, \
         customs_supervised, customs_declaration_no, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'approved', '2026-11-20', $5, $6, $7, $7) RETURNING id",
    )
    .bind(w.unit)
    .bind(name)
    .bind(code)
    .bind(value_fen)
    .bind(customs as i64)
    .bind(if customs { "4600-2021" } else { "" })
    .bind(w.app.now())
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap()
}

pub(crate) async fn national(w: &World, id: i64, body: Value) {
    let (status, b) = w
        .app
        .api(
            "PUT",
            &format!("/api/v1/instruments/{id}/national"),
            Some(&w.owner),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{b}");
}

pub(crate) async fn new_batch(w: &World, kind: &str) -> Value {
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/reports",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "kind": kind, "period": "2026Q4"})),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    b
}

pub(crate) fn problems_of(batch: &Value, record: i64) -> Vec<(String, String)> {
    batch["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["record_id"] == record)
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) async fn approve_tasks(w: &World) -> usize {
    let (_, tasks) = w
        .app
        .api("GET", "/api/v1/tasks", Some(&w.admin), None)
        .await;
    let items = tasks["items"].as_array().cloned().unwrap_or_default();
    for t in &items {
        let (status, body) = w
            .app
            .api(
                "POST",
                &format!("/api/v1/tasks/{}/actions", t["id"]),
                Some(&w.admin),
                Some(json!({"action": "approve", "comment": "同意上报"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    items.len()
}

/// Poll the batch until it has `status` (the pusher runs in the background).
pub(crate) async fn wait_for(w: &World, id: i64, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = w
            .app
            .api(
                "GET",
                &format!("/api/v1/reports/{id}"),
                Some(&w.owner),
                None,
            )
            .await;
        if b["status"] == status {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "batch never became {status}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_unit_fixes_its_batch_the_platform_approves_and_the_upstream_receives_it_once_after_a_503()
 {
    let (url, up) = start_upstream(Upstream {
        refuse_first: 1,
        ..Default::default()
    })
    .await;
    let w = world(Some(&url)).await;
    let sem = instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    let nmr = instrument(&w, "核磁共振波谱仪", "990000", 80_000_000, false).await;
    let small = instrument(&w, "紫外分光光度计", "990000", 49_999_999, false).await;
    national(
        &w,
        sem,
        json!({"name_en": "Field emission scanning electron microscope", "technical": "分辨率 1.0 nm",
               "functions": "形貌观察与成分分析", "subject_codes": ["430", "150"], "begin_date": "2025-03-01"}),
    )
    .await;
    national(
        &w,
        nmr,
        json!({"technical": "400 MHz", "functions": "结构鉴定"}),
    )
    .await;
    // The upstream will reject the NMR record.
    up.reject
        .lock()
        .unwrap()
        .push((nmr.to_string(), "英文名称与型号不符".to_string()));

    // The unit builds the batch: an instrument under 50 万元 is left out, not flagged.
    let batch = new_batch(&w, "instruments").await;
    let id = batch["id"].as_i64().unwrap();
    assert_eq!(batch["status"], "draft");
    let records: Vec<i64> = batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record_id"].as_i64().unwrap())
        .collect();
    assert_eq!(records, vec![sem, nmr]);
    assert!(!records.contains(&small));
    assert_eq!(
        problems_of(&batch, nmr),
        vec![("ename".to_string(), "缺少英文名称".to_string())]
    );
    assert!(problems_of(&batch, sem).is_empty());

    // Submitting with a problem is refused with every problem listed.
    let (status, err) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/reports/{id}/submit"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "report_invalid");
    assert_eq!(
        err["error"]["details"],
        json!([{"record_id": nmr, "field": "ename", "message": "缺少英文名称"}])
    );

    // The unit fixes the record and submits; the platform approves.
    national(&w, nmr, json!({"name_en": "NMR spectrometer"})).await;
    let (status, s) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/reports/{id}/submit"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 202, "{s}");
    assert_eq!(s["state"], "review");
    let (_, pending) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/reports/{id}"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(approve_tasks(&w).await, 1);

    // The first push meets a 503, the retry is accepted: pushed, with per-record answers.
    let done = wait_for(&w, id, "pushed").await;
    assert_eq!(done["attempts"], 2);
    let upstream_of = |rid: i64| {
        done["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["record_id"] == rid)
            .unwrap()["upstream"]
            .clone()
    };
    assert_eq!(
        upstream_of(sem),
        json!({"status": "accepted", "reason": null})
    );
    assert_eq!(
        upstream_of(nmr),
        json!({"status": "rejected", "reason": "英文名称与型号不符"})
    );

    let received = up.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "one refused attempt and one accepted");
    for r in &received {
        assert_eq!(r.path, "/national/instruments");
        assert_eq!(r.idempotency_key, format!("labshare-report-{id}"));
        assert_eq!(r.authorization, "Bearer upstream-secret");
        assert_eq!(r.body, received[0].body, "the retry sends the same batch");
    }
    let expected_sem = json!({
        "innerId": sem.to_string(), "cname": "场发射扫描电子显微镜",
        "ename": "Field emission scanning electron microscope", "instrBelongsType": "无",
        "instrCategory": "990000", "instrSource": "购置", "type": "通用", "worth": "186.00",
        "nation": "", "instrVersion": "", "manufacturer": "", "beginDate": "2025-03-01",
        "subject": "430,150", "technical": "分辨率 1.0 nm", "function": "形貌观察与成分分析",
        "requirement": "", "fee": "", "serviceContent": "",
        "serviceUrl": format!("{PUBLIC}/instruments/{sem}"), "instrSupervise": "否",
        "runMachine": "0", "serviceMachine": "0", "funds": "单位自有", "insideDepart": "",
        "status": "正常", "shareMode": "外部共享", "province": "河南省", "city": "许昌市",
        "county": "", "address": "", "postalcode": "", "contact": "", "phone": "", "email": "",
    });
    let body = &received[0].body;
    assert_eq!(body["insCode"], credit_code(201));
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    assert_eq!(body["records"][0], expected_sem);
    assert_eq!(body["records"][1]["ename"], "NMR spectrometer");
    assert_eq!(body["records"][1]["worth"], "80.00");

    // Nothing more is sent: the batch is final after the 200.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.received.lock().unwrap().len(), 2);

    // The rejected record is owed again (it can be corrected and reported); the accepted is not.
    let again = new_batch(&w, "instruments").await;
    let ids: Vec<i64> = again["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![nmr]);
}

#[tokio::test]
async fn every_national_rule_has_its_chinese_message() {
    let w = world(None).await;
    let bad = instrument(&w, "透射电子显微镜", "123456", 300_000_000, true).await;
    national(
        &w,
        bad,
        json!({"name_en": "TEM", "technical": "指".repeat(501), "functions": "能".repeat(301),
               "subject_codes": "110,120,130,140,150", "begin_date": "2025/03/01"}),
    )
    .await;
    let batch = new_batch(&w, "instruments").await;
    let mut got = problems_of(&batch, bad);
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("beginDate", "启用日期应为 YYYY-MM-DD 格式的日期"),
        ("declarationNumber", "海关监管仪器须填写 18 位进口报关单号"),
        ("function", "主要功能不超过 300 字（现 301 字）"),
        ("importDate", "缺少进口日期"),
        ("instrCategory", "仪器分类代码“123456”不是国家仪器分类代码"),
        ("subject", "主要学科领域最多 4 个（现 5 个）"),
        ("technical", "主要技术指标不超过 500 字（现 501 字）"),
    ]
    .iter()
    .map(|(f, m)| (f.to_string(), m.to_string()))
    .collect();
    want.sort();
    // importDate has no `required`, so only a present but malformed date is a problem.
    want.retain(|(f, _)| f != "importDate");
    assert_eq!(got, want);

    // A service record without hours.
    let buyer = w.app.create_user("buyer", "user").await;
    let buyer_token = w.app.token("buyer").await;
    let user_unit = certified_unit(
        &w.app,
        &buyer_token,
        "许昌测试企业",
        202,
        "user",
        "high_tech",
    )
    .await;
    let done_at = chrono::DateTime::parse_from_rfc3339("2026-11-16T10:00:00+08:00")
        .unwrap()
        .timestamp();
    let booking: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, \
         price_fen, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '样品形貌观察', 'completed', 0, 100000, 0, 0) RETURNING id",
    )
    .bind(bad)
    .bind(user_unit)
    .bind(buyer)
    .bind(done_at - 7200)
    .bind(done_at)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    let record: i64 = sqlx::query_scalar(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, \
         applicant_name, amount_fen, voucher_fen, service_hours_x100, started_at, ended_at, completed_at, year, \
         rating, created_at) VALUES ($1, 'FW0001', $2, $3, $4, '李四', 100000, 0, 0, $5, $6, $6, 2026, '非常满意', $6) RETURNING id",
    )
    .bind(booking)
    .bind(bad)
    .bind(w.unit)
    .bind(user_unit)
    .bind(done_at - 7200)
    .bind(done_at)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    let services = new_batch(&w, "service_records").await;
    assert_eq!(
        problems_of(&services, record),
        vec![(
            "serviceAmount".to_string(),
            "服务记录缺少服务机时".to_string()
        )]
    );
    let n = &services["items"][0]["national"];
    assert_eq!(n["recordInnerId"], record.to_string());
    assert_eq!(n["innerId"], bad.to_string());
    assert_eq!(n["amounts"], "1000.00");
    assert_eq!(n["serviceTime"], "2026-11-16 08");
    assert_eq!(n["endTime"], "2026-11-16 10");
    assert_eq!(n["serviceWay"], "占用共享");
    assert_eq!(n["serviceType"], "外部用户");
    assert_eq!(n["comment"], "非常满意");
    assert_eq!(n["applicantUnit"], "许昌测试企业");

    // A second open batch of the same kind and quarter is refused.
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/reports",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "kind": "instruments", "period": "2026Q4"})),
        )
        .await;
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"]["code"], "report_exists");
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/reports",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "kind": "instruments", "period": "2026Q5"})),
        )
        .await;
    assert_eq!(status, 422, "{b}");
    assert!(b["error"]["fields"]["period"].is_string());
}

#[tokio::test]
async fn docking_clients_read_within_their_scopes_and_a_revoked_token_is_refused_at_once() {
    let w = world(None).await;
    w.app.create_user("sysadmin", "system_admin").await;
    let sys = w.app.token("sysadmin").await;
    let sem = instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    instrument(&w, "紫外分光光度计", "990000", 100_000, false).await;

    let create = |scopes: Value| {
        let app = &w.app;
        let sys = sys.clone();
        async move {
            let (status, b) = app
                .api(
                    "POST",
                    "/api/v1/api-clients",
                    Some(&sys),
                    Some(json!({"name": "省平台", "scopes": scopes, "expires_at": "2027-12-31"})),
                )
                .await;
            assert_eq!(status, 201, "{b}");
            (
                b["id"].as_i64().unwrap(),
                b["token"].as_str().unwrap().to_string(),
            )
        }
    };
    let (_, stats_token) = create(json!(["read:statistics"])).await;
    let (reader, reader_token) = create(json!(["read:instruments"])).await;

    let (status, b) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/instruments",
            Some(&stats_token),
            None,
        )
        .await;
    assert_eq!(status, 403, "{b}");
    assert_eq!(b["error"]["code"], "insufficient_scope");

    let (status, b) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/instruments?updated_since=2020-01-01T00:00:00%2B08:00&page=1",
            Some(&reader_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["total"], 1, "only reportable instruments: {b}");
    assert_eq!(b["items"][0]["id"], sem);
    assert_eq!(b["items"][0]["national"]["cname"], "场发射扫描电子显微镜");
    assert_eq!(b["items"][0]["national"]["insCode"], credit_code(201));
    let (status, _) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/service-records",
            Some(&reader_token),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // The token is stored hashed only; the list never shows it.
    let (_, list) = w
        .app
        .api("GET", "/api/v1/api-clients", Some(&sys), None)
        .await;
    assert_eq!(list["total"], 2);
    assert!(!list.to_string().contains(&reader_token));
    assert!(
        list["items"][0]["last_used_at"].is_string()
            || list["items"][1]["last_used_at"].is_string()
    );

    let (status, _) = w
        .app
        .api(
            "DELETE",
            &format!("/api/v1/api-clients/{reader}"),
            Some(&sys),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, b) = w
        .app
        .api(
            "GET",
            "/api/v1/docking/instruments",
            Some(&reader_token),
            None,
        )
        .await;
    assert_eq!(status, 401, "{b}");

    // A unit manager cannot manage docking clients.
    let (status, _) = w
        .app
        .api("GET", "/api/v1/api-clients", Some(&w.owner), None)
        .await;
    assert_eq!(status, 403);

    // The system admin reads every call in the access log at 数据对接.
    let client = w.app.browser_login("sysadmin").await;
    let (status, html) = w.app.get_page(&client, "/console/docking").await;
    assert_eq!(status, 200);
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("数据对接"));
    assert!(html.contains("GET /api/v1/docking/instruments"));
    assert!(html.contains("已吊销"));
}

#[tokio::test]
async fn the_unit_sees_what_it_owes_and_its_problems_on_the_pages() {
    let w = world(None).await;
    let sem = instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    let browser = w.app.browser_login("owner").await;
    let (status, html) = w.app.get_page(&browser, "/console/reports").await;
    assert_eq!(status, 200);
    assert!(html.contains("信息上报"));
    assert!(html.contains("场发射扫描电子显微镜"));
    // 2026-11-20 + 30 working days.
    assert!(
        html.contains("2027-01-05") || html.contains("2027-01-0"),
        "{html}"
    );

    let res = w
        .app
        .post_form(
            &browser,
            "/console/reports",
            "/console/reports",
            &[
                ("unit_id", &w.unit.to_string()),
                ("kind", "instruments"),
                ("period", "2026Q4"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let (status, html) = w.app.get_page(&browser, &to).await;
    assert_eq!(status, 200);
    assert!(html.contains("缺少英文名称"), "{html}");
    assert!(html.contains("删除草稿"));

    // The unit fills in the national fields through the form, refreshes, and the problems go.
    let res = w
        .app
        .post_form(
            &browser,
            &format!("/console/instruments/{sem}/national?back={to}"),
            &format!("/console/instruments/{sem}/national"),
            &[
                ("name_en", "Field emission SEM"),
                ("technical", "分辨率 1.0 nm"),
                ("functions", "形貌观察"),
                ("back", &to),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = w
        .app
        .post_form(&browser, &to, &format!("{to}/refresh"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = w.app.get_page(&browser, &to).await;
    assert!(html.contains("没有问题，可以提交"), "{html}");
    let res = w
        .app
        .post_form(&browser, &to, &format!("{to}/submit"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, html) = w.app.get_page(&browser, &to).await;
    assert!(html.contains("平台审核中"), "{html}");
}

#[tokio::test]
async fn a_batch_whose_push_failed_is_sent_after_a_restart_under_the_same_key() {
    let (url, up) = start_upstream(Upstream {
        refuse_first: 1,
        ..Default::default()
    })
    .await;
    // The first process retries only after an hour.
    let first = {
        let vars = [
            ("LABSHARE_NOW", NOW),
            ("LABSHARE_PUBLIC_URL", PUBLIC),
            ("LABSHARE_UPSTREAM_URL", url.as_str()),
            ("LABSHARE_UPSTREAM_TOKEN", "upstream-secret"),
            ("LABSHARE_UPSTREAM_BACKOFF_MS", "3600000"),
            ("LABSHARE_UPSTREAM_POLL_MS", "50"),
        ];
        let app = spawn_app_with(&vars).await;
        app.create_user("owner", "unit_manager").await;
        app.create_user("padmin", "platform_admin").await;
        let owner = app.token("owner").await;
        let admin = app.token("padmin").await;
        let unit = certified_unit(&app, &owner, "许昌测试大学", 201, "managing", "other").await;
        World {
            app,
            owner,
            admin,
            unit,
        }
    };
    let sem = instrument(&first, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    national(
        &first,
        sem,
        json!({"name_en": "SEM", "technical": "1 nm", "functions": "形貌观察"}),
    )
    .await;
    let id = new_batch(&first, "instruments").await["id"]
        .as_i64()
        .unwrap();
    let (status, b) = first
        .app
        .api(
            "POST",
            &format!("/api/v1/reports/{id}/submit"),
            Some(&first.owner),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    approve_tasks(&first).await;
    // The first attempt meets the 503; the batch waits for its retry, nothing is lost.
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "never pushed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = wait_for(&first, id, "approved").await;
    assert_eq!(waiting["attempts"], 1);
    assert!(
        waiting["last_error"].as_str().unwrap().contains("503"),
        "{waiting}"
    );

    // labshare starts again on the same database two hours later; it sends the batch.
    let later = "2026-12-01T10:00:00+08:00";
    let db_url = first.app.state.config.database_url.clone();
    let second = spawn_app_with(&[
        ("LABSHARE_DATABASE_URL", db_url.as_str()),
        ("LABSHARE_NOW", later),
        ("LABSHARE_PUBLIC_URL", PUBLIC),
        ("LABSHARE_UPSTREAM_URL", url.as_str()),
        ("LABSHARE_UPSTREAM_TOKEN", "upstream-secret"),
        ("LABSHARE_UPSTREAM_BACKOFF_MS", "100"),
        ("LABSHARE_UPSTREAM_POLL_MS", "50"),
    ])
    .await;
    let owner = second.token("owner").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = second
            .api("GET", &format!("/api/v1/reports/{id}"), Some(&owner), None)
            .await;
        if b["status"] == "pushed" {
            assert_eq!(b["items"][0]["upstream"]["status"], "accepted");
            break;
        }
        assert!(Instant::now() < deadline, "never pushed after restart: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = up.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].idempotency_key, received[1].idempotency_key);
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn the_quarter_end_reminder_tells_the_unit_what_it_owes_once_per_quarter() {
    let w = world(None).await;
    instrument(&w, "场发射扫描电子显微镜", "990000", 186_000_000, false).await;
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-12-25T09:00:00+08:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let first = labshare::jobs::run(&w.app.state, "report-reminders", as_of)
        .await
        .unwrap();
    assert!(
        matches!(&first, labshare::jobs::Outcome::Done(t) if t.contains("已提醒 1 位管理员")),
        "{first:?}"
    );
    let again = labshare::jobs::run(&w.app.state, "report-reminders", as_of)
        .await
        .unwrap();
    assert_eq!(again, labshare::jobs::Outcome::AlreadyDone);
    let titles: Vec<String> = sqlx::query_scalar(
        "SELECT n.title FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'owner'",
    )
    .fetch_all(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        titles,
        vec!["许昌测试大学：2026Q4 季度信息上报提醒".to_string()]
    );
}

#[tokio::test]
async fn the_national_fields_are_taken_on_post_instruments_and_kept_for_reporting() {
    let w = world(None).await;
    let (status, b) = w
        .app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&w.owner),
            Some(json!({"unit_id": w.unit, "name": "激光共聚焦显微镜", "category_code": "990000",
                "value": "920000.00", "name_en": "Confocal laser scanning microscope",
                "technical": "分辨率 120 nm", "functions": "活细胞成像", "subject_codes": ["180", "310"],
                "begin_date": "2024-06-01", "country": "DEU"})),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, n) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}/national"),
            Some(&w.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{n}");
    assert_eq!(n["name_en"], "Confocal laser scanning microscope");
    assert_eq!(n["subject_codes"], json!(["180", "310"]));
    assert_eq!(n["begin_date"], "2024-06-01");
}
