use serde_json::{Value, json};

use axum::http::Method;
use labshare::{
    auth::{BUILTIN_ROLES, builtin_role},
    web::routes::{Access, Route},
};

use crate::{
    common::{TestApp, new_client, spawn_app, unit_body},
    redemptions::post_multipart,
};

/// The routes the matrix can call as they are: permission-guarded, no path parameters.
fn guarded_routes() -> Vec<Route> {
    labshare::web::routes::all()
        .into_iter()
        .filter(|r| r.access.is_guarded() && !r.has_path_params())
        .collect()
}

/// Page forms sent as multipart (uploads): the CSRF token alone gets them past the extractor.
const MULTIPART_FORMS: [&str; 3] = [
    "/console/redemptions",
    "/console/instruments/import",
    "/console/rules",
];

/// A JSON body that gets past the extractor of the API routes whose handlers read the body
/// before checking the permission (the ids name nothing); `{}` for the rest.
fn body_for(path: &str) -> Value {
    let none = 999_999;
    match path {
        "/api/v1/evaluations" | "/api/v1/voucher-applications" => {
            json!({"unit_id": none, "year": 2024})
        }
        "/api/v1/testing-orders" => {
            json!({"service_id": none, "unit_id": none, "instrument_id": none})
        }
        "/api/v1/bookings" => json!({"instrument_id": none, "unit_id": none,
                                     "start": "2030-01-07 09:00", "end": "2030-01-07 10:00"}),
        "/api/v1/subsidy-settlements" => json!({"year": 2000}),
        "/api/v1/policy" => json!({"yaml": ""}),
        "/api/v1/redemptions" => json!({"unit_id": none, "booking_ids": []}),
        _ => json!({}),
    }
}

/// Call a route as `browser` (pages; forms carry the CSRF token) or with `token` (API); the
/// status and the error code (`forbidden` is a missing permission).
async fn call(
    app: &TestApp,
    route: &Route,
    browser: Option<&reqwest::Client>,
    token: Option<&str>,
) -> (u16, String) {
    if route.is_api() {
        let (status, body) = app
            .api(
                route.method.as_str(),
                &route.path,
                token,
                Some(body_for(&route.path)),
            )
            .await;
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return (status, code);
    }
    let client = browser.cloned().unwrap_or_else(new_client);
    let res = if route.method == Method::GET {
        client.get(app.url(&route.path)).send().await.unwrap()
    } else if MULTIPART_FORMS.contains(&route.path.as_str()) {
        post_multipart(app, &client, "/console/password", &route.path, &[], &[]).await
    } else {
        assert_eq!(route.method, Method::POST, "{}", route.path);
        app.post_form(&client, "/console/password", &route.path, &[])
            .await
    };
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let html = res.text().await.unwrap_or_default();
    // The error page shows "错误代码：403 forbidden".
    let code = match location {
        Some(l) => l,
        None => html
            .split("错误代码：")
            .nth(1)
            .and_then(|t| t.split('<').next())
            .and_then(|t| t.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_string(),
    };
    (status, code)
}

/// Every built-in role against every permission-guarded route of every table (pages and API,
/// every method) without path parameters: refused as `forbidden` exactly when the role lacks
/// the route's permission; GET pages it may see answer 200.
#[tokio::test]
async fn each_role_gets_403_exactly_on_routes_it_lacks_the_permission_for() {
    let app = spawn_app().await;
    let routes = guarded_routes();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for role in BUILTIN_ROLES.iter().map(|r| r.key) {
        let username = format!("u_{role}");
        app.create_user(&username, role).await;
        let token = app.token(&username).await;
        let browser = app.browser_login(&username).await;
        let perms = builtin_role(role).unwrap().permissions;
        for route in &routes {
            let (method, path) = (&route.method, &route.path);
            let (status, code) = call(&app, route, Some(&browser), Some(&token)).await;
            let allowed = route.access.allows(|p| perms.contains(&p));
            let refused = status == 403 && code == "forbidden";
            let page_shown = status == 200 || route.is_api() || *method != Method::GET;
            if refused == allowed || status >= 500 || (allowed && !page_shown) {
                wrong.push(format!(
                    "{role} {method} {path} ({:?}, allowed: {allowed}): {status} {code}",
                    route.access
                ));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(checked, routes.len() * BUILTIN_ROLES.len());
    assert!(routes.len() >= 60, "only {} guarded routes", routes.len());
}

/// Every route that needs a signed-in user, anonymously: the API answers 401
/// `unauthenticated`, pages send the browser to the login page and back.
#[tokio::test]
async fn anonymous_callers_get_401_from_the_api_and_the_login_page_from_the_console() {
    let app = spawn_app().await;
    let routes: Vec<Route> = labshare::web::routes::all()
        .into_iter()
        .filter(|r| r.access != Access::Public && !r.has_path_params())
        .collect();
    for route in &routes {
        let (method, path) = (&route.method, &route.path);
        let (status, code) = call(&app, route, None, None).await;
        if route.is_api() {
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthenticated"),
                "{method} {path}"
            );
        } else {
            let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
            assert_eq!(status, 303, "{method} {path}");
            assert_eq!(code, format!("/login?next={next}"), "{method} {path}");
        }
    }
    assert!(routes.len() >= 80, "only {} routes", routes.len());
    let res = app
        .client
        .get(app.url("/console/roles"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fconsole%2Froles");
}

#[tokio::test]
async fn a_unit_manager_cannot_touch_another_units_records() {
    let app = spawn_app().await;
    app.create_user("mgr_a", "unit_manager").await;
    app.create_user("mgr_b", "unit_manager").await;
    let a = app.token("mgr_a").await;
    let b = app.token("mgr_b").await;
    let (status, unit_a) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&a),
            Some(unit_body("甲大学", 1, "managing")),
        )
        .await;
    assert_eq!(status, 201, "{unit_a}");
    assert_eq!(unit_a["certification_status"], "draft");
    let id_a = unit_a["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&b),
            Some(unit_body("乙研究所", 2, "managing")),
        )
        .await;
    assert_eq!(status, 201);

    let change = json!({"contact_name": "李四", "contact_mobile": "13900000000"});
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/units/{id_a}"),
            Some(&b),
            Some(change.clone()),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "not_unit_member");
    let (status, _) = app
        .api("GET", &format!("/api/v1/units/{id_a}"), Some(&b), None)
        .await;
    assert_eq!(status, 403, "a draft unit is private to its members");

    let (status, body) = app
        .api(
            "PATCH",
            &format!("/api/v1/units/{id_a}"),
            Some(&a),
            Some(change),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contact_name"], "李四");

    // The console page refuses the other unit's manager as well.
    let browser_b = app.browser_login("mgr_b").await;
    let (status, html) = app
        .get_page(&browser_b, &format!("/console/units/{id_a}"))
        .await;
    assert_eq!(status, 403);
    assert!(html.contains("无权访问"));
    // Platform admins (reviewers) may look at it.
    app.create_user("bureau", "platform_admin").await;
    let p = app.token("bureau").await;
    let (status, body) = app
        .api("GET", &format!("/api/v1/units/{id_a}"), Some(&p), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["certification_status"], "draft");
}

#[tokio::test]
async fn a_wrong_credit_code_is_422_on_that_field() {
    let app = spawn_app().await;
    app.create_user("mgr", "unit_manager").await;
    let t = app.token("mgr").await;
    let mut body = unit_body("丙公司", 3, "user");
    let mut code = body["credit_code"].as_str().unwrap().to_string();
    let last = code.pop().unwrap();
    code.push(if last == '0' { '1' } else { '0' });
    body["credit_code"] = json!(code);
    let (status, res) = app.api("POST", "/api/v1/units", Some(&t), Some(body)).await;
    assert_eq!(status, 422);
    assert_eq!(
        res["error"]["fields"]["credit_code"],
        "统一社会信用代码校验位不正确，请核对"
    );
}

#[tokio::test]
async fn a_system_admin_creates_a_custom_role_and_grants_it() {
    let app = spawn_app().await;
    app.create_user("root", "system_admin").await;
    let target = app.create_user("analyst", "user").await;
    let admin = app.browser_login("root").await;
    // Invalid first: no permissions chosen; the typed name is kept.
    let res = app
        .post_form(
            &admin,
            "/console/roles/new",
            "/console/roles",
            &[("key", "data_officer"), ("name", "数据专员")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("请至少选择一项权限"));
    assert!(html.contains("数据专员"));
    let res = app
        .post_form(
            &admin,
            "/console/roles/new",
            "/console/roles",
            &[
                ("key", "data_officer"),
                ("name", "数据专员"),
                ("permissions", "console.access"),
                ("permissions", "stats.view"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = app
        .post_form(
            &admin,
            "/console/users",
            &format!("/console/users/{target}/roles"),
            &[("roles", "user"), ("roles", "data_officer")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let token = app.token("analyst").await;
    let (_, me) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert!(
        me["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("data_officer"))
    );
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("stats.view"))
    );
}
