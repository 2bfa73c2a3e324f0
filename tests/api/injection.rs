//! The injection corpus (注入测试): script, SQL, template, header, path and formula payloads,
//! control characters and very long strings through the text fields of the main forms and API
//! bodies. Nothing may execute or answer 5xx; what is accepted comes back intact in JSON (or in
//! the database for page-only records), pages show it escaped, exports show it as text.

use serde_json::{Value, json};

use crate::{
    common::{TestApp, certified_unit, spawn_app_with, unit_body, xlsx_rows},
    security_matrix::multipart,
};

const NOW: &str = "2026-12-01T08:00:00+08:00";

/// The payloads (a very long one is added by [`corpus`]).
const PAYLOADS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "' OR 1=1 --",
    "'); DROP TABLE users;--",
    "{{ 7*7 }}",
    "{% raw %}{{ config }}{% endraw %}",
    "${7*7}",
    "a\r\nSet-Cookie: x=1",
    "../../etc/passwd",
    "=HYPERLINK(\"http://evil.example\",\"点我\")",
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "javascript:alert(1)",
    "nul\u{0}byte",
    "\u{202E}gpj.exe",
];

/// The payloads and two very long strings.
fn corpus() -> Vec<String> {
    let mut c: Vec<String> = PAYLOADS.iter().map(|p| p.to_string()).collect();
    c.push("长".repeat(5_000));
    c.push("A".repeat(100_000));
    c
}

/// What a page must never contain when `value` was entered: the markup of a script payload
/// unescaped, or a template payload evaluated.
fn unsafe_in_page(html: &str, value: &str) -> Option<&'static str> {
    if value.contains('<') && html.contains(value) {
        return Some("raw markup");
    }
    if value.contains("onerror=") && html.contains("<img src=x onerror") {
        return Some("raw <img onerror>");
    }
    if html.contains("<script>alert(1)</script>") {
        return Some("raw <script>");
    }
    if value.contains("7*7") && (html.contains("注入49") || html.contains("注入$49")) {
        return Some("a template expression was evaluated");
    }
    None
}

/// Bidirectional embedding, override and isolate characters (U+202E before `fdp.exe`
/// shows it as `exe.pdf`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `v` holds the string `s` somewhere.
fn holds(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| holds(x, s)),
        Value::Object(o) => o.values().any(|x| holds(x, s)),
        _ => false,
    }
}

struct Probe<'a> {
    app: &'a TestApp,
    problems: Vec<String>,
    requests: usize,
    /// Values accepted and stored (checked for intact round trips).
    accepted: usize,
}

impl Probe<'_> {
    fn note(&mut self, what: String) {
        self.problems.push(what);
    }

    /// An API call; a 5xx or an injected cookie is a problem.
    async fn api(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.requests += 1;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .bearer_auth(token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        self.headers(&format!("{method} {path}"), res.headers());
        let text = res.text().await.unwrap_or_default();
        if status >= 500 {
            self.note(format!("{method} {path}: {status} {text}"));
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn headers(&mut self, what: &str, h: &reqwest::header::HeaderMap) {
        for v in h.get_all("set-cookie") {
            if v.to_str().unwrap_or_default().starts_with("x=") {
                self.note(format!("{what}: header injection: Set-Cookie {v:?}"));
            }
        }
    }

    /// A page that shows `value`; it must answer below 500 and show it safely.
    async fn page(&mut self, client: &reqwest::Client, path: &str, value: &str) -> String {
        self.requests += 1;
        let res = client
            .get(self.app.url(path))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        self.headers(path, res.headers());
        let html = res.text().await.unwrap_or_default();
        if status >= 500 {
            self.note(format!("GET {path}: {status}"));
        }
        if let Some(why) = unsafe_in_page(&html, value) {
            self.note(format!("GET {path}: {why} for {:?}", short(value)));
        }
        html
    }

    /// A page form posted with its CSRF token; the status.
    async fn form(
        &mut self,
        client: &reqwest::Client,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> u16 {
        self.requests += 2;
        let res = self.app.post_form(client, form_page, action, fields).await;
        let status = res.status().as_u16();
        self.headers(action, res.headers());
        if status >= 500 {
            let body = res.text().await.unwrap_or_default();
            self.note(format!("POST {action}: {status} {}", short(&body)));
        }
        status
    }

    /// `got` (from JSON or the database) must equal what was sent.
    fn intact(&mut self, what: &str, sent: &str, got: Option<&str>) {
        self.accepted += 1;
        if got != Some(sent) {
            self.note(format!(
                "{what}: stored {:?}, sent {:?}",
                got.map(short),
                short(sent)
            ));
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

#[tokio::test]
async fn injection_payloads_are_stored_as_sent_shown_escaped_and_never_a_500() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    app.create_user("inj_mgr", "unit_manager").await;
    app.create_user("inj_bureau", "platform_admin").await;
    app.create_user("inj_buyer", "user").await;
    let mgr = app.token("inj_mgr").await;
    let bureau = app.token("inj_bureau").await;
    let buyer = app.token("inj_buyer").await;
    let mgr_browser = app.browser_login("inj_mgr").await;
    let bureau_browser = app.browser_login("inj_bureau").await;
    let anon = crate::common::new_client();
    let unit = certified_unit(&app, &mgr, "许昌注入测试大学", 700, "managing", "other").await;
    let buyer_unit =
        certified_unit(&app, &buyer, "许昌注入测试企业", 701, "user", "high_tech").await;
    let host: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, review_status, open_to_public, created_at, updated_at) \
         VALUES ($1, '激光共聚焦显微镜', '010100', 200000000, 'approved', 1, 0, 0) RETURNING id",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    // A unit certification under review, for comments on its task.
    let (_, draft) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&mgr),
            Some(unit_body("许昌注入测试学院", 702, "managing")),
        )
        .await;
    let draft = draft["id"].as_i64().unwrap();
    let (status, started) = app
        .api(
            "POST",
            &format!("/api/v1/units/{draft}/certification"),
            Some(&mgr),
            Some(json!({})),
        )
        .await;
    assert!(status < 300, "{started}");
    let instance = started["instance_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{started}"));
    let task: i64 = sqlx::query_scalar(
        "SELECT id FROM workflow_tasks WHERE instance_id = $1 AND status = 'open'",
    )
    .bind(instance)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();

    // A redemption of a served booking, for file names.
    let served: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, voucher_fen, voucher_year, created_at, updated_at) \
         VALUES ($1, $2, 1, 1780000000, 1780003600, '测试', 'completed', 0, 150000, 50000, 2026, 0, 0) RETURNING id",
    )
    .bind(host)
    .bind(buyer_unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (status, r) = app
        .api(
            "POST",
            "/api/v1/redemptions",
            Some(&mgr),
            Some(json!({"unit_id": unit, "booking_ids": [served]})),
        )
        .await;
    assert_eq!(status, 202, "{r}");
    let redemption = r["id"].as_i64().unwrap();

    let mut p = Probe {
        app: &app,
        problems: Vec::new(),
        requests: 0,
        accepted: 0,
    };
    let corpus = corpus();
    for (i, payload) in corpus.iter().enumerate() {
        let v = format!("注入{payload}");
        let n = i as u32;

        // Registration: the display name.
        let username = format!("inj_user_{i}");
        let (status, _) = p
            .api("POST", "/api/v1/users", "", Some(json!({"username": username, "password": crate::common::PASSWORD, "display_name": v})))
            .await;
        if status < 300 {
            let t = app.token(&username).await;
            let (_, me) = p.api("GET", "/api/v1/me", &t, None).await;
            p.intact("user display_name", &v, me["display_name"].as_str());
        }
        // The same through the page form.
        let browser = crate::common::new_client();
        p.form(
            &browser,
            "/register",
            "/register",
            &[
                ("username", &format!("inj_page_{i}")),
                ("password", crate::common::PASSWORD),
                ("password_confirm", crate::common::PASSWORD),
                ("display_name", &v),
            ],
        )
        .await;

        // Units: create with the name, update the contact.
        let mut body = unit_body(&v, 800 + n, "managing");
        body["address"] = json!(v);
        let (status, u) = p.api("POST", "/api/v1/units", &mgr, Some(body)).await;
        if status < 300 {
            let id = u["id"].as_i64().unwrap();
            let (_, got) = p
                .api("GET", &format!("/api/v1/units/{id}"), &mgr, None)
                .await;
            p.intact("unit name", &v, got["name"].as_str());
            let (status, got) = p
                .api(
                    "PATCH",
                    &format!("/api/v1/units/{id}"),
                    &mgr,
                    Some(json!({"contact_name": v})),
                )
                .await;
            if status < 300 {
                p.intact("unit contact_name", &v, got["contact_name"].as_str());
            }
            p.page(&mgr_browser, &format!("/console/units/{id}"), &v)
                .await;
            sqlx::query("UPDATE units SET certification_status = 'certified' WHERE id = $1")
                .bind(id)
                .execute(&app.db.pool)
                .await
                .unwrap();
            p.page(&anon, &format!("/orgs/{id}"), &v).await;
        }

        // Instruments: create with the name and description, patch the location.
        let (status, ins) = p
            .api("POST", "/api/v1/instruments", &mgr, Some(json!({
                "unit_id": unit, "name": payload, "category_code": "010100", "value": "1000.00", "description": v,
            })))
            .await;
        if status < 300 {
            let id = ins["id"].as_i64().unwrap();
            let (status, got) = p
                .api(
                    "PATCH",
                    &format!("/api/v1/instruments/{id}"),
                    &mgr,
                    Some(json!({"location": v})),
                )
                .await;
            if status < 300 {
                p.intact("instrument location", &v, got["location"].as_str());
            }
            let (_, got) = p
                .api("GET", &format!("/api/v1/instruments/{id}"), &mgr, None)
                .await;
            p.intact("instrument name", payload, got["name"].as_str());
            p.intact("instrument description", &v, got["description"].as_str());
            p.page(&mgr_browser, &format!("/console/instruments/{id}"), &v)
                .await;
            sqlx::query("UPDATE instruments SET review_status = 'approved' WHERE id = $1")
                .bind(id)
                .execute(&app.db.pool)
                .await
                .unwrap();
            p.page(&anon, &format!("/instruments/{id}"), &v).await;
            p.page(&anon, "/instruments", &v).await;
        }

        // Platforms, services and achievements.
        for (kind, body) in [
            (
                "platforms",
                json!({"unit_id": unit, "name": payload, "category": "重点实验室", "platform_type": "市级", "description": v}),
            ),
            (
                "services",
                json!({"unit_id": unit, "name": payload, "category": "材料检测", "price": "300.00", "price_unit": "样",
                                "sample_requirements": v, "turnaround_days": 5, "service_status": "服务中", "description": v}),
            ),
            (
                "achievements",
                json!({"unit_id": unit, "title": payload, "field": "新材料", "holder": v, "maturity": "中试",
                                    "transfer_mode": "转让", "description": v}),
            ),
        ] {
            let (status, r) = p
                .api("POST", &format!("/api/v1/{kind}"), &mgr, Some(body))
                .await;
            if status < 300 {
                let id = r["id"].as_i64().unwrap();
                let (_, got) = p
                    .api("GET", &format!("/api/v1/{kind}/{id}"), &mgr, None)
                    .await;
                p.intact(
                    &format!("{kind} description"),
                    &v,
                    got["description"].as_str(),
                );
                p.page(&mgr_browser, &format!("/console/{kind}/{id}"), &v)
                    .await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {kind} SET review_status = 'approved' WHERE id = $1"
                )))
                .bind(id)
                .execute(&app.db.pool)
                .await
                .unwrap();
                p.page(&anon, &format!("/{kind}/{id}"), &v).await;
            }
        }

        // A content article (its body is HTML by design and is sanitised; title and summary are text).
        let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM articles")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let body_html = format!("<p>正文</p>{payload}");
        p.form(
            &bureau_browser,
            "/console/content/new",
            "/console/content",
            &[
                ("kind", "news"),
                ("title", &v),
                ("summary", &v),
                ("body_html", &body_html),
                ("source", &v),
            ],
        )
        .await;
        let article: Option<(i64, String)> =
            sqlx::query_as("SELECT id, title FROM articles WHERE id > $1")
                .bind(before)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        if let Some((id, title)) = article {
            p.intact("article title", &v, Some(&title));
            p.form(
                &bureau_browser,
                &format!("/console/content/{id}"),
                &format!("/console/content/{id}/publish"),
                &[],
            )
            .await;
            p.page(&bureau_browser, &format!("/console/content/{id}"), &v)
                .await;
            p.page(&anon, &format!("/news/{id}"), &v).await;
            p.page(&anon, "/news", &v).await;
        }

        // An expert of the pool (a page form; checked in the database).
        let expert_name: String = v.chars().take(20).collect();
        let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM experts")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        p.form(
            &bureau_browser,
            "/console/experts/new",
            "/console/experts",
            &[
                ("name", &expert_name),
                ("unit_name", &v),
                ("title", "正高级"),
                ("fields", "材料科学"),
                ("status", "在库"),
            ],
        )
        .await;
        let expert: Option<(i64, String)> =
            sqlx::query_as("SELECT id, unit_name FROM experts WHERE id > $1")
                .bind(before)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        if let Some((id, unit_name)) = expert {
            p.intact("expert unit_name", &v, Some(&unit_name));
            p.page(&bureau_browser, &format!("/console/experts/{id}"), &v)
                .await;
            p.page(&bureau_browser, "/console/experts", &v).await;
        }

        // A booking's purpose, shown to the instrument's unit.
        let day = 2 + (i as i64 % 20);
        let (status, b) = p
            .api(
                "POST",
                "/api/v1/bookings",
                &buyer,
                Some(json!({
                    "instrument_id": host, "unit_id": buyer_unit,
                    "start": format!("2026-12-{day:02}T{:02}:00:00+08:00", 8 + (i / 20) * 2),
                    "end": format!("2026-12-{day:02}T{:02}:00:00+08:00", 9 + (i / 20) * 2),
                    "purpose": v,
                })),
            )
            .await;
        if status < 300 {
            let id = b["id"].as_i64().unwrap();
            let (_, got) = p
                .api("GET", &format!("/api/v1/bookings/{id}"), &buyer, None)
                .await;
            p.intact("booking purpose", &v, got["purpose"].as_str());
            p.page(&mgr_browser, "/console/bookings", &v).await;
        }

        // An evaluation's self report (one declaration a year per unit: a unit each).
        let eval_unit = certified_unit(
            &app,
            &mgr,
            &format!("许昌注入评价单位{i}"),
            900 + n,
            "managing",
            "other",
        )
        .await;
        let report = format!("本年度仪器共享服务情况良好，开放机时与服务收入均有增长。{v}");
        let (status, e) = p
            .api(
                "POST",
                "/api/v1/evaluations",
                &mgr,
                Some(json!({"unit_id": eval_unit, "year": 2026, "self_report": report})),
            )
            .await;
        if status < 300 {
            let id = e["id"].as_i64().unwrap();
            let (_, got) = p
                .api("GET", &format!("/api/v1/evaluations/{id}"), &mgr, None)
                .await;
            p.intact(
                "evaluation self_report",
                &report,
                got["self_report"].as_str(),
            );
            p.page(&mgr_browser, &format!("/console/evaluations/{id}"), &v)
                .await;
        }

        // Search: the query through the API and the portal page, with filters.
        // (A URL holds at most 64 KiB: long queries are cut to 500 characters.)
        let cut: String = payload.chars().take(500).collect();
        let q: String = url::form_urlencoded::byte_serialize(cut.as_bytes()).collect();
        p.api(
            "GET",
            &format!("/api/v1/search?q={q}&type={q}&city={q}&page={q}"),
            "",
            None,
        )
        .await;
        p.api("GET", &format!("/api/v1/search/suggest?q={q}"), "", None)
            .await;
        p.page(&anon, &format!("/search?q={q}"), &cut).await;

        // The same through the filters and page numbers of the list pages.
        let filters = format!(
            "q={q}&kind={q}&type={q}&status={q}&category={q}&city={q}&side={q}&year={q}&page={q}&week={q}"
        );
        for list in [
            "/instruments",
            "/platforms",
            "/services",
            "/achievements",
            "/orgs",
            "/news",
            "/notices",
            "/policies",
            "/evaluations",
            "/console/instruments",
            "/console/platforms",
            "/console/bookings",
            "/console/my-bookings",
            "/console/service-records",
            "/console/tasks",
            "/console/redemptions",
            "/console/evaluations",
            "/console/notifications",
        ] {
            p.page(&mgr_browser, &format!("{list}?{filters}"), &cut)
                .await;
        }
        p.page(&anon, &format!("/instruments/{host}/book?{filters}"), &cut)
            .await;
        for list in [
            "/console/experts",
            "/console/content",
            "/console/subsidies",
            "/console/evaluation-admin",
            "/console/statistics",
        ] {
            p.page(&bureau_browser, &format!("{list}?{filters}"), &cut)
                .await;
        }
        for list in ["/api/v1/evaluations", "/api/v1/tasks", "/api/v1/workflows"] {
            p.api("GET", &format!("{list}?{filters}"), &mgr, None).await;
        }

        // A comment on the certification task, in the instance's history.
        let (status, _) = p
            .api(
                "POST",
                &format!("/api/v1/tasks/{task}/actions"),
                &bureau,
                Some(json!({"action": "comment", "comment": v})),
            )
            .await;
        if status < 300 {
            let (_, inst) = p
                .api(
                    "GET",
                    &format!("/api/v1/workflow-instances/{instance}"),
                    &bureau,
                    None,
                )
                .await;
            if !holds(&inst, &v) {
                p.note(format!(
                    "task comment {:?} not in the instance's history",
                    short(&v)
                ));
            }
            p.accepted += 1;
        }

        // A redemption file's name (path traversal, header injection in the download).
        let name = format!("{payload}.pdf");
        let (ct, bytes) = multipart(
            &[("kind", "contract")],
            &[("file", &name, crate::redemptions::PDF)],
        );
        p.requests += 1;
        let res = app
            .client
            .post(app.url(&format!("/api/v1/redemptions/{redemption}/files")))
            .bearer_auth(&mgr)
            .header("content-type", ct)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status >= 500 {
            p.note(format!("redemption file {:?}: {status}", short(&name)));
        }
        if status < 300 {
            let (_, r) = p
                .api(
                    "GET",
                    &format!("/api/v1/redemptions/{redemption}"),
                    &mgr,
                    None,
                )
                .await;
            let file = r["files"]
                .as_array()
                .and_then(|f| f.last())
                .cloned()
                .unwrap_or(Value::Null);
            // Names lose path parts, quotes, control and bidirectional-override characters
            // and are cut to 120 characters; a name without them is kept as sent.
            let got = file["name"].as_str().unwrap_or_default();
            if got
                .chars()
                .any(|c| c.is_control() || is_bidi_control(c) || matches!(c, '/' | '\\' | '"'))
                || got.is_empty()
            {
                p.note(format!(
                    "redemption file name stored unsafe: {:?}",
                    short(got)
                ));
            }
            if !name
                .chars()
                .any(|c| c.is_control() || is_bidi_control(c) || matches!(c, '/' | '\\' | '"'))
                && name.chars().count() <= 120
            {
                p.intact("redemption file name", &name, Some(got));
            }
            if let Some(url) = file["url"].as_str() {
                p.requests += 1;
                let res = app
                    .client
                    .get(app.url(url))
                    .bearer_auth(&mgr)
                    .send()
                    .await
                    .unwrap();
                p.headers(url, res.headers());
                let cd = res
                    .headers()
                    .get("content-disposition")
                    .map(|h| h.as_bytes().to_vec())
                    .unwrap_or_default();
                if res.status().as_u16() >= 500 || cd.iter().any(|b| *b == b'\r' || *b == b'\n') {
                    p.note(format!(
                        "{url}: {} content-disposition {:?}",
                        res.status(),
                        String::from_utf8_lossy(&cd)
                    ));
                }
            }
        }
    }
    p.page(
        &bureau_browser,
        &format!("/console/workflow-instances/{instance}"),
        "<script>alert(1)</script>",
    )
    .await;
    p.page(
        &bureau_browser,
        &format!("/console/tasks/{task}"),
        "<script>alert(1)</script>",
    )
    .await;

    // Exports show every value as text: a formula prefix is neutralised.
    for path in [
        "/console/instruments/export.xlsx",
        "/console/platforms/export.xlsx",
        "/console/services/export.xlsx",
        "/console/achievements/export.xlsx",
    ] {
        p.requests += 1;
        let rows = xlsx_rows(&app, &mgr_browser, path).await;
        let shown = format!("'{}", PAYLOADS[9]);
        if !rows.iter().flatten().any(|c| *c == shown) {
            p.note(format!("{path}: no cell shows {shown:?}"));
        }
        for row in rows.iter().skip(1) {
            for cell in row {
                if cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
                    && cell.parse::<f64>().is_err()
                {
                    p.note(format!(
                        "{path}: a cell starts with a formula prefix: {:?}",
                        short(cell)
                    ));
                }
            }
        }
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(users > 3, "the users table is still there");
    assert!(
        p.problems.is_empty(),
        "{} problems:\n{}",
        p.problems.len(),
        p.problems.join("\n")
    );
    println!(
        "injection corpus: {} payloads, {} requests, {} stored values checked",
        corpus.len(),
        p.requests,
        p.accepted
    );
}
