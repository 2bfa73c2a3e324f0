//! Test harness shared by the test binaries: `spawn_app()` starts the real application on
//! port 0 against a fresh database — a temporary SQLite file, or, when
//! `LABSHARE_TEST_DATABASE_URL` names a PostgreSQL server, a fresh database that is dropped
//! when the test ends.
#![allow(dead_code)]

pub mod process;
pub mod smtp;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use labshare::{auth, config::Config, server, store::Db, web::AppState};
use serde_json::Value;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "Passw0rd-test";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub db: Db,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
    _shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

fn crate_path(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Create a fresh PostgreSQL database on the server named by `admin_url`; returns its URL
/// and its name (for `drop_pg_database`).
pub async fn fresh_pg_database(admin_url: &str) -> (String, String) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!(
        "labshare_test_{}",
        &auth::random_token().to_lowercase().replace(['-', '_'], "")[..16]
    );
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin_url).expect("admin url");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

/// A fresh database for a test that runs its own processes: a SQLite file in `dir`, or a
/// fresh PostgreSQL database when `LABSHARE_TEST_DATABASE_URL` is set (dropped with the guard).
pub async fn fresh_database_url(dir: &std::path::Path) -> (String, PgDrop) {
    match std::env::var("LABSHARE_TEST_DATABASE_URL") {
        Ok(admin) => {
            let (url, name) = fresh_pg_database(&admin).await;
            (url, PgDrop(Some((admin, name))))
        }
        Err(_) => (
            format!("sqlite://{}/labshare.db", dir.display()),
            PgDrop(None),
        ),
    }
}

/// Drops a test's PostgreSQL database when it goes out of scope.
pub struct PgDrop(Option<(String, String)>);

/// A guard that drops nothing (a SQLite file goes with its temporary directory).
pub fn no_pg_drop() -> PgDrop {
    PgDrop(None)
}

impl Drop for PgDrop {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.0.take() {
            drop_pg_database(admin, name);
        }
    }
}

/// `DROP DATABASE … WITH (FORCE)` from a separate thread with its own runtime: Drop cannot
/// await, and closing the app's pool here would wait for a server task that cannot run.
pub fn drop_pg_database(admin: String, name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        }
    })
    .join();
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Start the app with extra configuration variables.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    // `LABSHARE_TEST_LOG=error` shows the server's logs (e.g. the cause of a 500).
    if let Ok(filter) = std::env::var("LABSHARE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut pg_drop = None;
    vars.insert("LABSHARE_DATA_DIR".into(), dir.path().display().to_string());
    if let Ok(admin) = std::env::var("LABSHARE_TEST_DATABASE_URL") {
        let (url, name) = fresh_pg_database(&admin).await;
        vars.insert("LABSHARE_DATABASE_URL".into(), url);
        pg_drop = Some((admin, name));
    }
    vars.insert("LABSHARE_TEMPLATES_DIR".into(), crate_path("templates"));
    vars.insert("LABSHARE_STATIC_DIR".into(), crate_path("static"));
    vars.insert("LABSHARE_WORKFLOWS_DIR".into(), crate_path("workflows"));
    vars.insert("LABSHARE_BIND".into(), "127.0.0.1:0".into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let state = server::prepare(config).await.expect("prepare app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = server::serve(serve_state, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        db: state.db.clone(),
        state,
        client: new_client(),
        _shutdown: Some(tx),
        _dir: dir,
        pg_drop,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self._shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((admin, name)) = self.pg_drop.take() {
            drop_pg_database(admin, name);
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn now(&self) -> i64 {
        self.state.now()
    }

    /// Create an account directly with a built-in role; returns its id.
    pub async fn create_user(&self, username: &str, role: &str) -> i64 {
        auth::create_user(
            &self.db,
            auth::NewUser {
                username: username.into(),
                password: PASSWORD.into(),
                display_name: format!("测试{username}"),
                email: Some(format!("{username}@test.example")),
                phone: None,
            },
            &[role],
            self.now(),
        )
        .await
        .expect("create user")
    }

    /// Log in through the API and return the bearer token.
    pub async fn token(&self, username: &str) -> String {
        self.token_with(username, PASSWORD).await
    }

    /// A bearer token for an account with its own password (e.g. a demo account).
    pub async fn token_with(&self, username: &str, password: &str) -> String {
        let res = self
            .client
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(res.status(), 200, "login of {username} failed");
        let body: Value = res.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }

    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get_page(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let res = client.get(self.url(path)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// Post a form with the CSRF token taken from `form_page` (as a browser would).
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let (_, html) = self.get_page(client, form_page).await;
        let token = csrf_from(&html).unwrap_or_default();
        let mut pairs: Vec<(String, String)> = vec![("csrf_token".into(), token)];
        pairs.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        client
            .post(self.url(action))
            .form(&pairs)
            .send()
            .await
            .expect("form post")
    }

    /// A cookie client signed in as `username` through the login form.
    pub async fn browser_login(&self, username: &str) -> reqwest::Client {
        let client = new_client();
        let res = self
            .post_form(
                &client,
                "/login",
                "/login",
                &[("username", username), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(
            res.status(),
            303,
            "form login of {username} should redirect"
        );
        client
    }
}

/// An availability item's free intervals as (HH:MM, HH:MM) pairs, Beijing time.
pub fn free_hours(item: &serde_json::Value) -> Vec<(String, String)> {
    item["free"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["start"].as_str().unwrap()[11..16].to_string(),
                f["end"].as_str().unwrap()[11..16].to_string(),
            )
        })
        .collect()
}

pub fn csrf_from(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A valid unified social credit code, different for each `n`.
pub fn credit_code(n: u32) -> String {
    let first17 = format!("91411000MA{:07}", 1_000_000 + n);
    labshare::domain::CreditCode::complete(&first17)
        .expect("valid body")
        .as_str()
        .to_string()
}

pub fn unit_body(name: &str, n: u32, kind: &str) -> Value {
    serde_json::json!({
        "name": name, "kind": kind, "nature": "企业", "credit_code": credit_code(n),
        "contact_name": "张三", "contact_mobile": "13800000000", "enterprise_type": "high_tech",
        "dishonest": false, "abnormal_operation": false,
    })
}

/// A unit created through the API by `token`'s user and marked certified (Arrange).
pub async fn certified_unit(
    app: &TestApp,
    token: &str,
    name: &str,
    n: u32,
    kind: &str,
    etype: &str,
) -> i64 {
    let mut body = unit_body(name, n, kind);
    body["enterprise_type"] = serde_json::json!(etype);
    let (status, b) = app
        .api("POST", "/api/v1/units", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    sqlx::query("UPDATE units SET certification_status = 'certified' WHERE id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    id
}

/// The five working days of public notice (公示) pass (Arrange: their deadline is moved into
/// the past) and the deadline job approves them; returns how many notices passed.
pub async fn notice_period_passes(app: &TestApp) -> usize {
    let n = sqlx::query(
        "UPDATE workflow_tasks SET due_at = $1 WHERE state = 'publicity' AND status = 'open'",
    )
    .bind(app.now() - 1)
    .execute(&app.db.pool)
    .await
    .unwrap()
    .rows_affected() as usize;
    app.state.engine.process_deadlines().await.unwrap();
    n
}

/// Download an xlsx with a signed-in client and return its first sheet's cells as text.
pub async fn xlsx_rows(app: &TestApp, client: &reqwest::Client, path: &str) -> Vec<Vec<String>> {
    use calamine::Reader;
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}
