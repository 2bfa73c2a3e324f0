//! Units run themselves (issue 13): permissions that follow a certified unit, membership with
//! consent, change requests and operational fields of approved instruments, retirement, and
//! the voucher balance with `used` and `expired` apart. Both databases.

use serde_json::{Value, json};

use crate::common::{TestApp, new_client, spawn_app_with, unit_body};

/// Tuesday 1 December 2026, 08:00 in Xuchang: a working day.
const NOW: &str = "2026-12-01T08:00:00+08:00";

async fn app() -> TestApp {
    spawn_app_with(&[("LABSHARE_NOW", NOW)]).await
}

/// Register through the public API (the built-in `user` role only) and log in.
async fn registered(app: &TestApp, username: &str) -> String {
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": username, "password": crate::common::PASSWORD,
                "display_name": format!("测试{username}"), "email": format!("{username}@test.example")})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.token(username).await
}

async fn new_unit(app: &TestApp, token: &str, name: &str, n: u32, kind: &str) -> i64 {
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(token),
            Some(unit_body(name, n, kind)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// The open task of the platform admin `admin` on a subject, decided with `action`.
async fn decide(app: &TestApp, admin: &str, subject: &str, id: i64, action: &str) -> Value {
    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(admin), None).await;
    let task = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"]["type"] == subject && t["subject"]["id"] == id)
        .unwrap_or_else(|| panic!("no task on {subject} {id}: {tasks}"))
        .clone();
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{}/actions", task["id"]),
            Some(admin),
            Some(json!({"action": action, "comment": "审核意见"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    out
}

/// Submit the unit for certification and have the platform admin approve it (the real flow).
async fn certify(app: &TestApp, token: &str, admin: &str, unit: i64) {
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/certification"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    decide(app, admin, "unit", unit, "approve").await;
    let (_, u) = app
        .api("GET", &format!("/api/v1/units/{unit}"), Some(token), None)
        .await;
    assert_eq!(u["certification_status"], "certified");
}

fn instrument_body(unit: i64, name: &str) -> Value {
    json!({
        "unit_id": unit, "name": name, "model": "Sigma 300",
        "manufacturer": "蔡司", "category_code": "010100", "department": "分析测试中心",
        "value": "1250000.00", "open_to_public": true, "city": "许昌市",
        "customs_supervised": false, "usage_status": "正常",
        "description": "分辨率 1.2 nm", "location": "实验楼 101", "fee_standard": "300 元/小时",
        "service_content": "形貌观察、能谱分析",
    })
}

/// An instrument created, submitted and approved through the API.
async fn approved_instrument(
    app: &TestApp,
    token: &str,
    admin: &str,
    unit: i64,
    name: &str,
) -> i64 {
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(token),
            Some(instrument_body(unit, name)),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    decide(app, admin, "instrument", id, "approve").await;
    id
}

/// A platform admin, a freshly registered user with a certified managing unit: (admin, token, unit).
async fn self_run_unit(app: &TestApp, username: &str, n: u32) -> (String, String, i64) {
    app.create_user(&format!("{username}_bureau"), "platform_admin")
        .await;
    let admin = app.token(&format!("{username}_bureau")).await;
    let token = registered(app, username).await;
    let unit = new_unit(app, &token, &format!("{username}研究院"), n, "managing").await;
    certify(app, &token, &admin, unit).await;
    (admin, token, unit)
}

#[tokio::test]
async fn a_registered_manager_of_a_certified_unit_works_for_it_until_certification_is_revoked() {
    let app = app().await;
    app.create_user("rv_bureau", "platform_admin").await;
    let admin = app.token("rv_bureau").await;
    let token = registered(&app, "rv_lab").await;
    let unit = new_unit(&app, &token, "许昌理工学院", 301, "managing").await;
    let other = new_unit(&app, &token, "许昌理工学院附属所", 302, "managing").await;

    // Not certified yet: no instrument for it, and nothing to publish in the console.
    let (status, _) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(instrument_body(unit, "激光共聚焦显微镜")),
        )
        .await;
    assert_eq!(status, 403);
    let browser = app.browser_login("rv_lab").await;
    let (_, html) = app.get_page(&browser, "/console").await;
    assert!(!html.contains("仪器管理"), "no 仪器管理 yet");

    certify(&app, &token, &admin, unit).await;
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(instrument_body(unit, "激光共聚焦显微镜")),
        )
        .await;
    assert_eq!(
        status, 201,
        "a certified unit's manager may publish for it: {b}"
    );
    let (_, me) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("instrument.manage"))
    );
    assert_eq!(me["roles"], json!(["user"]), "no global role was given");
    let (_, html) = app.get_page(&browser, "/console").await;
    assert!(html.contains("仪器管理"), "the sidebar offers 仪器管理");

    // Scoped: the same user's uncertified unit gets nothing from the certified one.
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(instrument_body(other, "原子力显微镜")),
        )
        .await;
    assert_eq!(status, 403, "{b}");

    // Revoked: gone at the next request.
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/revoke-certification"),
            Some(&token),
            Some(json!({"reason": "自己撤销"})),
        )
        .await;
    assert_eq!(status, 403, "only unit reviewers revoke: {b}");
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/revoke-certification"),
            Some(&admin),
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(status, 422, "{b}");
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/revoke-certification"),
            Some(&admin),
            Some(json!({"reason": "年检未通过"})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["certification_status"], "rejected");
    let (status, _) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(instrument_body(unit, "扫描探针显微镜")),
        )
        .await;
    assert_eq!(
        status, 403,
        "revoked certification removes the scoped permissions"
    );
    let (_, me) = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("instrument.manage"))
    );
    let (_, html) = app.get_page(&browser, "/console").await;
    assert!(!html.contains("仪器管理"), "the sidebar follows");
    assert_eq!(
        labshare::workflow::audit::verify(&app.db).await.unwrap(),
        labshare::workflow::audit::Verdict::Intact { entries: 3 },
        "the certification's start and approval, and the revocation, are in the decision log"
    );
}

#[tokio::test]
async fn an_uninvited_user_never_becomes_a_member_and_an_invited_one_only_by_accepting() {
    let app = app().await;
    let boss = registered(&app, "inv_boss").await;
    let unit = new_unit(&app, &boss, "许昌智造有限公司", 311, "user").await;
    let bob = registered(&app, "inv_bob").await;
    let eve = registered(&app, "inv_eve").await;
    let bob_id = app.api("GET", "/api/v1/me", Some(&bob), None).await.1["id"].clone();

    // Nobody but the unit's manager invites.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&eve),
            Some(json!({"username": "inv_eve", "role": "manager"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&boss),
            Some(json!({"username": "nobody_here", "role": "member"})),
        )
        .await;
    assert_eq!(status, 422, "{b}");
    assert!(
        b["error"]["fields"]["username"]
            .as_str()
            .unwrap()
            .contains("未找到")
    );

    let (status, inv) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&boss),
            Some(json!({"username": "inv_bob", "role": "member"})),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["status"], "pending");
    let inv_id = inv["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&boss),
            Some(json!({"username": "inv_bob", "role": "member"})),
        )
        .await;
    assert_eq!(status, 409, "one open invitation per person");

    // Invited is not a member: no unit in /me, the unit's members are not shown.
    let (_, me) = app.api("GET", "/api/v1/me", Some(&bob), None).await;
    assert_eq!(me["units"], json!([]));
    assert_eq!(me["invitations"][0]["id"], inv_id);
    assert_eq!(me["invitations"][0]["unit_name"], "许昌智造有限公司");
    let (status, _) = app
        .api(
            "GET",
            &format!("/api/v1/units/{unit}/members"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // Someone else cannot accept it for them.
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/invitations/{inv_id}/accept"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, me) = app.api("GET", "/api/v1/me", Some(&eve), None).await;
    assert_eq!(me["units"], json!([]));

    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/invitations/{inv_id}/accept"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "accepted");
    let (_, me) = app.api("GET", "/api/v1/me", Some(&bob), None).await;
    assert_eq!(me["units"][0]["id"], unit);
    assert_eq!(me["units"][0]["role"], "member");
    assert_eq!(me["invitations"], json!([]));
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/invitations/{inv_id}/accept"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 409, "an answered invitation is closed");

    // A declined invitation adds nobody.
    let (_, inv) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&boss),
            Some(json!({"username": "inv_eve", "role": "manager"})),
        )
        .await;
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/invitations/{}/decline", inv["id"]),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, me) = app.api("GET", "/api/v1/me", Some(&eve), None).await;
    assert_eq!(me["units"], json!([]));

    // The only manager cannot leave; after handing over they can.
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/leave"),
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"]["code"], "last_manager");
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/handover"),
            Some(&boss),
            Some(json!({"user_id": bob_id})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/leave"),
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, m) = app
        .api(
            "GET",
            &format!("/api/v1/units/{unit}/members"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(m["items"].as_array().unwrap().len(), 1);
    assert_eq!(m["items"][0]["role"], "manager");
    let actions: Vec<&str> = m["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "created",
            "invited",
            "accepted",
            "invited",
            "declined",
            "handed_over",
            "stepped_down",
            "left"
        ]
    );
    assert_eq!(
        labshare::workflow::audit::verify(&app.db).await.unwrap(),
        labshare::workflow::audit::Verdict::Intact { entries: 7 },
        "every membership change after the creation is in the decision log"
    );
}

#[tokio::test]
async fn a_change_request_leaves_the_public_record_unchanged_until_it_is_approved() {
    let app = app().await;
    let (admin, token, unit) = self_run_unit(&app, "chg_lab", 321).await;
    let id = approved_instrument(&app, &token, &admin, unit, "高分辨透射电子显微镜").await;
    let path = format!("/api/v1/instruments/{id}");

    let (status, c) = app
        .api(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"fee_standard": "450 元/小时", "description": "点分辨率 0.19 nm 钨灯丝独家"})),
        )
        .await;
    assert_eq!(status, 202, "{c}");
    let change = c["change_id"].as_i64().unwrap();
    assert!(c["instance_id"].is_number());

    // The public record, page and search keep the approved values.
    let (status, got) = app.api("GET", &path, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["fee_standard"], "300 元/小时");
    assert_eq!(got["review_status"], "approved");
    let (_, html) = app
        .get_page(&new_client(), &format!("/instruments/{id}"))
        .await;
    assert!(html.contains("300 元") && !html.contains("450 元"));
    let (_, res) = app
        .api("GET", "/api/v1/search?q=钨灯丝独家", None, None)
        .await;
    assert_eq!(res["total"], 0, "{res}");

    // One open request at a time; the owner and reviewer see the field-by-field difference.
    let (status, b) = app
        .api(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"fee_standard": "500 元/小时"})),
        )
        .await;
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"]["code"], "change_pending");
    let (status, d) = app
        .api(
            "GET",
            &format!("/api/v1/changes/{change}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{d}");
    let fee = d["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "fee_standard")
        .unwrap()
        .clone();
    assert_eq!(
        (
            fee["label"].as_str(),
            fee["before"].as_str(),
            fee["after"].as_str()
        ),
        (Some("收费标准"), Some("300 元/小时"), Some("450 元/小时"))
    );
    assert_eq!(
        d["diff"].as_array().unwrap().len(),
        2,
        "only what changed: {d}"
    );
    let reviewer = app.browser_login("chg_lab_bureau").await;
    let (_, tasks) = app.api("GET", "/api/v1/tasks", Some(&admin), None).await;
    let task = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"]["type"] == "record_change" && t["subject"]["id"] == change)
        .unwrap()
        .clone();
    let (status, html) = app
        .get_page(&reviewer, &format!("/console/tasks/{}", task["id"]))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("变更前") && html.contains("300 元") && html.contains("450 元"));

    decide(&app, &admin, "record_change", change, "approve").await;
    let (_, got) = app.api("GET", &path, None, None).await;
    assert_eq!(got["fee_standard"], "450 元/小时");
    let (_, html) = app
        .get_page(&new_client(), &format!("/instruments/{id}"))
        .await;
    assert!(html.contains("450 元"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, res) = app
            .api("GET", "/api/v1/search?q=钨灯丝独家", None, None)
            .await;
        if res["total"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not searchable: {res}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    // A rejected change leaves the record as it was.
    let (status, c) = app
        .api(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "改过的名字"})),
        )
        .await;
    assert_eq!(status, 202, "{c}");
    decide(
        &app,
        &admin,
        "record_change",
        c["change_id"].as_i64().unwrap(),
        "reject",
    )
    .await;
    let (_, got) = app.api("GET", &path, None, None).await;
    assert_eq!(got["name"], "高分辨透射电子显微镜");
    assert_eq!(got["fee_standard"], "450 元/小时");
    let (_, list) = app
        .api("GET", &format!("{path}/changes"), Some(&token), None)
        .await;
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["rejected", "approved"]);

    // Bad input in a change is a field error; another unit's manager may not ask.
    let (status, b) = app
        .api("PATCH", &path, Some(&token), Some(json!({"value": "abc"})))
        .await;
    assert_eq!(status, 422, "{b}");
    let (_, stranger, _) = self_run_unit(&app, "chg_other", 322).await;
    let (status, _) = app
        .api(
            "PATCH",
            &path,
            Some(&stranger),
            Some(json!({"fee_standard": "1 元"})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_change_of_an_approved_platform_goes_through_review_too() {
    let app = app().await;
    let (admin, token, unit) = self_run_unit(&app, "plat_lab", 331).await;
    let (status, b) = app
        .api("POST", "/api/v1/platforms", Some(&token), Some(json!({
            "unit_id": unit, "name": "许昌市新材料工程技术研究中心", "category": "工程技术研究中心",
            "platform_type": "市级", "description": "新材料研发与检测", "contact_name": "王工",
            "contact_phone": "13800000000",
        })))
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/platforms/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    decide(&app, &admin, "platform", id, "approve").await;
    let (status, c) = app
        .api(
            "PATCH",
            &format!("/api/v1/platforms/{id}"),
            Some(&token),
            Some(json!({"description": "新材料研发、中试与检测"})),
        )
        .await;
    assert_eq!(status, 202, "{c}");
    let (_, got) = app
        .api("GET", &format!("/api/v1/platforms/{id}"), None, None)
        .await;
    assert_eq!(got["description"], "新材料研发与检测");
    decide(
        &app,
        &admin,
        "record_change",
        c["change_id"].as_i64().unwrap(),
        "approve",
    )
    .await;
    let (_, got) = app
        .api("GET", &format!("/api/v1/platforms/{id}"), None, None)
        .await;
    assert_eq!(got["description"], "新材料研发、中试与检测");

    // The console form of the approved platform is open for a change request, not disabled.
    let client = app.browser_login("plat_lab").await;
    let page = format!("/console/platforms/{id}");
    let (status, html) = app.get_page(&client, &page).await;
    assert_eq!(status, 200);
    assert!(html.contains("提交变更申请"), "{html}");
    assert!(!html.contains("fieldset disabled"), "{html}");
    let res = app
        .post_form(
            &client,
            &page,
            &page,
            &[("description", "新材料研发、中试、检测与培训")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, got) = app
        .api("GET", &format!("/api/v1/platforms/{id}"), None, None)
        .await;
    assert_eq!(
        got["description"], "新材料研发、中试与检测",
        "public until approved"
    );
    let (status, list) = app
        .api(
            "GET",
            &format!("/api/v1/platforms/{id}/changes"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list.to_string().contains("新材料研发、中试、检测与培训"),
        "{list}"
    );
}

/// A certified user unit of a registered enterprise user, and a booking of `instrument`
/// two days ahead: (token, unit, booking id).
async fn booked(
    app: &TestApp,
    username: &str,
    n: u32,
    admin: &str,
    instrument: i64,
) -> (String, i64, i64) {
    let token = registered(app, username).await;
    let unit = new_unit(app, &token, &format!("{username}科技公司"), n, "user").await;
    certify(app, &token, admin, unit).await;
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&token),
            Some(json!({
                "instrument_id": instrument, "unit_id": unit, "start": "2026-12-03T09:00:00+08:00",
                "end": "2026-12-03T10:00:00+08:00", "purpose": "材料形貌表征",
            })),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    (token, unit, b["id"].as_i64().unwrap())
}

#[tokio::test]
async fn operational_fields_change_at_once_are_logged_and_future_bookings_are_told() {
    let app = app().await;
    let (admin, token, unit) = self_run_unit(&app, "op_lab", 341).await;
    let id = approved_instrument(&app, &token, &admin, unit, "电感耦合等离子体质谱仪").await;
    let (buyer, buyer_unit, _) = booked(&app, "op_buyer", 342, &admin, id).await;
    let op = format!("/api/v1/instruments/{id}/operation");

    let (status, b) = app.api("PATCH", &op, Some(&token), Some(json!({}))).await;
    assert_eq!(status, 422, "{b}");
    let (status, b) = app
        .api(
            "PATCH",
            &op,
            Some(&token),
            Some(json!({"usage_status": "坏了"})),
        )
        .await;
    assert_eq!(status, 422, "{b}");
    assert!(b["error"]["fields"]["usage_status"].is_string());
    let (status, _) = app
        .api("PATCH", &op, Some(&buyer), Some(json!({"bookable": false})))
        .await;
    assert_eq!(status, 403);

    let (status, b) = app
        .api(
            "PATCH",
            &op,
            Some(&token),
            Some(json!({"usage_status": "待修", "bookable": false})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        (
            b["usage_status"].as_str(),
            b["bookable"].as_bool(),
            b["notified"].as_i64()
        ),
        (Some("待修"), Some(false), Some(1))
    );
    // At once, without review.
    let (_, got) = app
        .api("GET", &format!("/api/v1/instruments/{id}"), None, None)
        .await;
    assert_eq!(
        (got["usage_status"].as_str(), got["bookable"].as_bool()),
        (Some("待修"), Some(false))
    );
    let told: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE u.username = 'op_buyer' AND n.title LIKE '%暂停预约%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(told, 1);
    let logged: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT field, before_value, after_value FROM instrument_operation_log WHERE instrument_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        logged,
        [
            (
                "usage_status".to_string(),
                "正常".to_string(),
                "待修".to_string()
            ),
            ("bookable".to_string(), "是".to_string(), "否".to_string()),
        ]
    );
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&buyer),
            Some(json!({
                "instrument_id": id, "unit_id": buyer_unit, "start": "2026-12-04T09:00:00+08:00",
                "end": "2026-12-04T10:00:00+08:00", "purpose": "元素分析",
            })),
        )
        .await;
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"]["code"], "not_bookable");
    let (status, b) = app
        .api("PATCH", &op, Some(&token), Some(json!({"bookable": true})))
        .await;
    assert_eq!((status, b["notified"].as_i64()), (200, Some(0)));
}

#[tokio::test]
async fn a_retired_instrument_leaves_the_portal_and_search_and_refuses_new_bookings() {
    let app = app().await;
    let (admin, token, unit) = self_run_unit(&app, "ret_lab", 351).await;
    let id = approved_instrument(&app, &token, &admin, unit, "X射线光电子能谱仪").await;
    let (buyer, buyer_unit, booking) = booked(&app, "ret_buyer", 352, &admin, id).await;
    let retire = format!("/api/v1/instruments/{id}/retire");

    let (status, b) = app
        .api("POST", &retire, Some(&token), Some(json!({"reason": " "})))
        .await;
    assert_eq!(status, 422, "{b}");
    let (status, r) = app
        .api(
            "POST",
            &retire,
            Some(&token),
            Some(json!({"reason": "设备老化，已报废"})),
        )
        .await;
    assert_eq!(status, 202, "{r}");
    assert!(r["instance_id"].is_number());
    let (status, _) = app
        .get_page(&new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 200, "still public until approved");

    decide(
        &app,
        &admin,
        "record_change",
        r["change_id"].as_i64().unwrap(),
        "approve",
    )
    .await;
    let (status, _) = app
        .get_page(&new_client(), &format!("/instruments/{id}"))
        .await;
    assert_eq!(status, 404, "off the portal");
    let (status, got) = app
        .api(
            "GET",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["review_status"], "retired");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, res) = app
            .api("GET", "/api/v1/search?q=X射线光电子能谱仪", None, None)
            .await;
        let hit = res["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "instrument" && i["id"] == id);
        if !hit {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still searchable: {res}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/bookings",
            Some(&buyer),
            Some(json!({
                "instrument_id": id, "unit_id": buyer_unit, "start": "2026-12-04T09:00:00+08:00",
                "end": "2026-12-04T10:00:00+08:00", "purpose": "表面分析",
            })),
        )
        .await;
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"]["code"], "instrument_retired");
    // The open booking's user is told; the booking itself (history) stays.
    labshare::notify::deliver_workflow_events(&app.state, 100)
        .await
        .unwrap();
    let told: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE u.username = 'ret_buyer' AND n.title LIKE '%已下线%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(told, 1);
    let (status, _) = app
        .api(
            "GET",
            &format!("/api/v1/bookings/{booking}"),
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, b) = app
        .api(
            "PATCH",
            &format!("/api/v1/instruments/{id}"),
            Some(&token),
            Some(json!({"fee_standard": "免费"})),
        )
        .await;
    assert_eq!(status, 409, "{b}");
}

#[tokio::test]
async fn the_voucher_balance_shows_used_and_expired_apart() {
    let w = crate::money::world("high_tech").await;
    crate::money::grant(&w, 2026).await;
    let id = crate::money::quoted(
        &w,
        "2026-12-03T09:00:00+08:00",
        "2026-12-03T10:00:00+08:00",
        "18333.33",
    )
    .await;
    let (status, b) = w
        .app
        .api(
            "POST",
            &format!("/api/v1/bookings/{id}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "7333.33"})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let as_of = labshare::jobs::as_of_date(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    labshare::jobs::run(&w.app.state, "yearly-close", as_of)
        .await
        .unwrap();
    let (status, b) = w
        .app
        .api(
            "GET",
            &format!("/api/v1/units/{}/vouchers?year=2026", w.user_unit),
            Some(&w.user),
            None,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        (
            b["quota"].as_str(),
            b["used"].as_str(),
            b["expired"].as_str(),
            b["available"].as_str()
        ),
        (
            Some("50000.00"),
            Some("7333.33"),
            Some("42666.67"),
            Some("0.00")
        )
    );
}

#[tokio::test]
async fn a_membership_accepted_after_a_flow_started_does_not_change_who_reviews_it() {
    let app = app().await;
    let (admin, token, unit) = self_run_unit(&app, "rec_lab", 361).await;
    // A second reviewer the deadline job could re-route the task to.
    app.create_user("rec_second", "platform_admin").await;
    let (status, b) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(&token),
            Some(instrument_body(unit, "气相色谱质谱联用仪")),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 202);
    // Arrange: the review started a minute ago (times are whole seconds).
    sqlx::query(
        "UPDATE workflow_instances SET created_at = created_at - 60 WHERE subject_type = 'instrument' AND subject_id = $1",
    )
    .bind(id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    // The reviewer is invited into the unit and accepts while the review runs.
    let (status, inv) = app
        .api(
            "POST",
            &format!("/api/v1/units/{unit}/invitations"),
            Some(&token),
            Some(json!({"username": "rec_lab_bureau", "role": "member"})),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let (status, _) = app
        .api(
            "POST",
            &format!("/api/v1/invitations/{}/accept", inv["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Recusal looks at the unit as it was when the review started: re-routing (the deadline
    // job moves tasks away from those no longer eligible) leaves the task theirs.
    app.state.engine.process_deadlines().await.unwrap();
    let out = decide(&app, &admin, "instrument", id, "approve").await;
    assert_eq!(out["status"], "completed", "{out}");
}
