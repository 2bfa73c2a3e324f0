//! Issue 18: the reviewer queue (filters, working days left, batch approval), the flow
//! designer (a 复核 step added and published without YAML), versions (diff, roll back,
//! moving running instances) and delegation (委托代理), on both databases.

use serde_json::{Value, json};

use crate::common::{TestApp, spawn_app, spawn_app_with, unit_body};

/// A copy of the shipped workflows the test may publish into.
fn workflows_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
    for entry in std::fs::read_dir(src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

/// A unit manager `mgr{n}` with a unit, submitted for certification; returns the unit id.
async fn certification_submitted(app: &TestApp, n: u32) -> i64 {
    app.create_user(&format!("mgr{n}"), "unit_manager").await;
    let mgr = app.token(&format!("mgr{n}")).await;
    let (status, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&mgr),
            Some(unit_body(&format!("许昌队列单位{n}"), n, "managing")),
        )
        .await;
    assert_eq!(status, 201, "{unit}");
    let id = unit["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/units/{id}/certification"),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    id
}

async fn open_task_of(app: &TestApp, unit: i64) -> (i64, i64, Option<i64>) {
    sqlx::query_as(
        "SELECT t.id, t.assignee_id, t.on_behalf_of FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE i.subject_type = 'unit' AND i.subject_id = $1 AND t.status = 'open'",
    )
    .bind(unit)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn certification(app: &TestApp, unit: i64) -> String {
    sqlx::query_scalar("SELECT certification_status FROM units WHERE id = $1")
        .bind(unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Post a form with the CSRF token of `page`, as a browser would; returns (status, location, body).
async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(String, String)],
) -> (u16, String, String) {
    let (_, html) = app.get_page(client, page).await;
    let mut pairs = vec![(
        "csrf_token".to_string(),
        crate::common::csrf_from(&html).unwrap_or_default(),
    )];
    pairs.extend(fields.iter().cloned());
    let res = client
        .post(app.url(action))
        .form(&pairs)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, res.text().await.unwrap_or_default())
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn flash_of(app: &TestApp, client: &reqwest::Client, location: &str) -> String {
    let (_, html) = app.get_page(client, location).await;
    html
}

#[tokio::test]
async fn the_reviewer_queue_filters_sorts_shows_working_days_and_batch_approves() {
    let dir = workflows_copy();
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    app.create_user("qrev", "platform_admin").await;
    let units = [
        certification_submitted(&app, 41).await,
        certification_submitted(&app, 42).await,
        certification_submitted(&app, 43).await,
    ];
    // The third is overdue by three days (Arrange).
    let (late, _, _) = open_task_of(&app, units[2]).await;
    sqlx::query("UPDATE workflow_tasks SET due_at = $1 WHERE id = $2")
        .bind(app.now() - 3 * 86_400)
        .bind(late)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let rev = app.browser_login("qrev").await;
    let (status, html) = app.get_page(&rev, "/console/tasks").await;
    assert_eq!(status, 200);
    assert!(html.contains("个工作日"), "{html}");
    assert!(html.contains("class=\"overdue\">已逾期"), "{html}");
    assert!(
        !html.contains("+08:00"),
        "dates are shown in Chinese: {html}"
    );
    assert!(html.contains("年") && html.contains("月"), "{html}");
    // Sorted by due date: the overdue one comes first.
    let first = html.find("许昌队列单位43").unwrap();
    assert!(first < html.find("许昌队列单位41").unwrap(), "{html}");
    let (_, overdue) = app.get_page(&rev, "/console/tasks?due=overdue").await;
    assert!(overdue.contains("许昌队列单位43") && !overdue.contains("许昌队列单位41"));
    let (_, other_flow) = app
        .get_page(&rev, "/console/tasks?flow=instrument_onboarding")
        .await;
    assert!(other_flow.contains("没有符合条件的待办"), "{other_flow}");
    // One sidebar entry is current on the filtered page.
    let (_, filtered) = app
        .get_page(&rev, "/console/tasks?flow=unit_certification")
        .await;
    assert_eq!(
        filtered.matches("aria-current=\"page\"").count(),
        2,
        "sidebar + tab"
    );
    assert!(
        filtered.contains("aria-current=\"page\">单位认证审核</a>"),
        "{filtered}"
    );

    // Batch approval: two of the three with one comment; a foreign task id is skipped.
    let (a, _, _) = open_task_of(&app, units[0]).await;
    let (b, _, _) = open_task_of(&app, units[1]).await;
    let mut fields = pairs(&[("comment", "材料齐全，批量同意")]);
    fields.push(("task".into(), a.to_string()));
    fields.push(("task".into(), b.to_string()));
    fields.push(("task".into(), "999999".into()));
    let (status, location, _) = post(
        &app,
        &rev,
        "/console/tasks",
        "/console/tasks/batch-approve",
        &fields,
    )
    .await;
    assert_eq!(status, 303);
    let page = flash_of(&app, &rev, &location).await;
    assert!(
        page.contains("已批量同意 2 项") && page.contains("1 项未处理"),
        "{page}"
    );
    assert_eq!(certification(&app, units[0]).await, "certified");
    assert_eq!(certification(&app, units[1]).await, "certified");
    assert_eq!(certification(&app, units[2]).await, "pending");
    let comments: Vec<(String,)> =
        sqlx::query_as("SELECT comment FROM workflow_audit WHERE action = 'approve' ORDER BY seq")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(comments.len(), 2);
    assert!(comments.iter().all(|c| c.0 == "材料齐全，批量同意"));

    // A step whose approval needs a form is never batch-approved.
    let src = std::fs::read_to_string(dir.path().join("unit_certification.yaml")).unwrap();
    let with_form = src.replacen(
        "          to: certified\n",
        "          to: certified\n          require: \"form.opinion\"\n          require_message: \"请填写审核意见表\"\n",
        1,
    );
    assert_ne!(with_form, src);
    app.state
        .engine
        .definitions
        .publish(&app.db, "unit_certification", &with_form, app.now())
        .await
        .unwrap();
    let unit = certification_submitted(&app, 44).await;
    let (formed, _, _) = open_task_of(&app, unit).await;
    let (_, html) = app.get_page(&rev, "/console/tasks").await;
    assert!(
        !html.contains(&format!("name=\"task\" value=\"{formed}\"")),
        "{html}"
    );
    let mut fields = pairs(&[("comment", "同意")]);
    fields.push(("task".into(), formed.to_string()));
    let (_, location, _) = post(
        &app,
        &rev,
        "/console/tasks",
        "/console/tasks/batch-approve",
        &fields,
    )
    .await;
    let page = flash_of(&app, &rev, &location).await;
    assert!(
        page.contains("已批量同意 0 项") && page.contains("须在办理页填写表单"),
        "{page}"
    );
    assert_eq!(certification(&app, unit).await, "pending");

    // The task page shows the subject's key fields beside the history.
    let (status, task) = app.get_page(&rev, &format!("/console/tasks/{late}")).await;
    assert_eq!(status, 200);
    assert!(
        task.contains("审批对象要点") && task.contains("统一社会信用代码"),
        "{task}"
    );
    assert!(task.contains("已逾期"), "{task}");
}

#[tokio::test]
async fn a_deputy_gets_new_tasks_during_the_delegation_and_they_go_back_when_it_ends() {
    let app = spawn_app().await;
    app.create_user("principal", "platform_admin").await;
    // The deputy holds no review permission: they decide under the principal's rule.
    let deputy = app.create_user("deputy", "expert").await;
    let boss = app.browser_login("principal").await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let (status, _, body) = post(
        &app,
        &boss,
        "/console/delegations",
        "/console/delegations",
        &pairs(&[
            ("deputy", "principal"),
            ("starts_on", &today.to_string()),
            ("ends_on", &today.to_string()),
        ]),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("不能委托给自己"), "{body}");
    let (status, _, _) = post(
        &app,
        &boss,
        "/console/delegations",
        "/console/delegations",
        &pairs(&[
            ("deputy", "deputy"),
            ("starts_on", &today.to_string()),
            ("ends_on", &(today + chrono::Duration::days(3)).to_string()),
            ("reason", "出差"),
        ]),
    )
    .await;
    assert_eq!(status, 303);

    let unit = certification_submitted(&app, 51).await;
    let (task, assignee, on_behalf) = open_task_of(&app, unit).await;
    let principal: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'principal'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!((assignee, on_behalf), (deputy, Some(principal)));
    // The reroute job keeps it with the deputy (eligible under the principal's rule).
    app.state.engine.process_deadlines().await.unwrap();
    assert_eq!(open_task_of(&app, unit).await.1, deputy);
    let dep = app.token("deputy").await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&dep),
            Some(json!({"action": "approve", "comment": "代为审核"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(certification(&app, unit).await, "certified");
    let instance = out["instance_id"].as_i64().unwrap();
    let (_, inst) = app
        .api(
            "GET",
            &format!("/api/v1/workflow-instances/{instance}"),
            Some(&dep),
            None,
        )
        .await;
    let decided: Vec<&Value> = inst["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "approve")
        .collect();
    assert_eq!(decided[0]["on_behalf_of"], "测试principal", "{inst}");
    let depb = app.browser_login("deputy").await;
    let (_, page) = app
        .get_page(&depb, &format!("/console/workflow-instances/{instance}"))
        .await;
    assert!(
        page.contains("测试deputy（代 测试principal 审批）"),
        "{page}"
    );

    // Ending it routes new tasks back to the principal.
    let (_, list) = app.get_page(&boss, "/console/delegations").await;
    assert!(list.contains("生效中") && list.contains("出差"), "{list}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM delegations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let (status, _, _) = post(
        &app,
        &boss,
        "/console/delegations",
        &format!("/console/delegations/{id}/end"),
        &[],
    )
    .await;
    assert_eq!(status, 303);
    // The deputy cannot end someone else's delegation (nothing to end: 404 flash, no change).
    let unit = certification_submitted(&app, 52).await;
    let (_, assignee, on_behalf) = open_task_of(&app, unit).await;
    assert_eq!((assignee, on_behalf), (principal, None));
}

/// Every form field of a designer page, as a browser would submit it (checked boxes,
/// selected options, text and hidden inputs), without any submit button.
fn form_fields(html: &str) -> Vec<(String, String)> {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    }
    fn unescape(s: &str) -> String {
        s.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    }
    let form_start = html.find("action=\"/console/workflows/").unwrap();
    let html = &html[form_start..html[form_start..].find("</form>").unwrap() + form_start];
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let end = rest.find('>').unwrap_or(rest.len() - 1);
        let tag = &rest[..=end];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name").filter(|n| n != "csrf_token") {
                let value = attr(tag, "value").unwrap_or_default();
                if kind != "checkbox" || tag.contains(" checked") {
                    out.push((name, value));
                }
            }
        } else if tag.starts_with("<select") {
            let name = attr(tag, "name").unwrap();
            let close = rest.find("</select>").unwrap();
            let body = &rest[..close];
            let mut chosen = None;
            let mut first = None;
            for opt in body.split("<option").skip(1) {
                let v = attr(&format!(" {opt}"), "value").unwrap_or_default();
                if first.is_none() {
                    first = Some(v.clone());
                }
                if opt[..opt.find('>').unwrap()].contains(" selected") {
                    chosen = Some(v);
                }
            }
            out.push((name, chosen.or(first).unwrap_or_default()));
            rest = &rest[close..];
        } else if tag.starts_with("<textarea") {
            let name = attr(tag, "name").unwrap();
            let close = rest.find("</textarea>").unwrap();
            out.push((name, unescape(&rest[end + 1..close])));
            rest = &rest[close..];
        }
        rest = &rest[1..];
    }
    out
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(f) => f.1 = value.to_string(),
        None => fields.push((name.to_string(), value.to_string())),
    }
}

async fn submitted_instrument(app: &TestApp, token: &str, unit: i64, name: &str) -> i64 {
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/instruments",
            Some(token),
            Some(json!({
                "unit_id": unit, "name": name, "model": "Sigma 300",
                "manufacturer": "蔡司", "category_code": "010100", "department": "分析测试中心",
                "value": "1250000.00", "open_to_public": true, "city": "许昌市",
                "customs_supervised": false, "usage_status": "正常",
                "description": "分辨率 1.2 nm", "location": "实验楼 101", "fee_standard": "300 元/小时",
                "service_content": "形貌观察",
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, b) = app
        .api(
            "POST",
            &format!("/api/v1/instruments/{id}/submit"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{b}");
    id
}

async fn instrument_task(app: &TestApp, id: i64) -> (i64, String, i64) {
    sqlx::query_as(
        "SELECT t.id, t.state, i.version FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE i.subject_type = 'instrument' AND i.subject_id = $1 AND t.status = 'open'",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// An administrator adds a 复核 step after 平台审核 in the designer (another role, three
/// working days), publishes; the next instrument passes both steps, the running one keeps
/// its version until it is moved; versions diff and roll back.
#[tokio::test]
async fn a_review_step_added_in_the_designer_applies_to_new_instruments_only() {
    let dir = workflows_copy();
    let app = spawn_app_with(&[("LABSHARE_WORKFLOWS_DIR", dir.path().to_str().unwrap())]).await;
    app.create_user("wfadmin", "system_admin").await;
    app.create_user("plat", "platform_admin").await;
    app.create_user("chk", "platform_admin").await;
    app.create_user("imgr", "unit_manager").await;
    let mgr = app.token("imgr").await;
    let (_, unit) = app
        .api(
            "POST",
            "/api/v1/units",
            Some(&mgr),
            Some(unit_body("许昌设计器单位", 61, "managing")),
        )
        .await;
    let unit = unit["id"].as_i64().unwrap();
    let running = submitted_instrument(&app, &mgr, unit, "运行中的电镜").await;

    let admin = app.browser_login("wfadmin").await;
    let designer = "/console/workflows/instrument_onboarding/designer";
    let (status, html) = app.get_page(&admin, designer).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("第 1 步：平台审核"), "{html}");
    // Add a step after 平台审核 (step 0).
    let mut fields = form_fields(&html);
    fields.push(("op".into(), "add:0".into()));
    let (status, _, html) = post(&app, &admin, designer, designer, &fields).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("第 2 步：新步骤"), "{html}");
    let mut fields = form_fields(&html);
    set(&mut fields, "s1.title", "复核");
    set(&mut fields, "s1.name", "recheck");
    set(&mut fields, "s1.who", "role");
    set(&mut fields, "s1.who_role", "system_admin");
    set(&mut fields, "s1.dl_n", "3");
    set(&mut fields, "s1.dl_unit", "working days");
    // A mistake first: a step leading nowhere is shown beside the step, in Chinese.
    set(&mut fields, "s1.to.approve", "");
    fields.push(("op".into(), "check".into()));
    let (status, _, bad) = post(&app, &admin, designer, designer, &fields).await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad.contains("class=\"problem\""), "{bad}");
    fields.retain(|(k, _)| k != "op");
    set(&mut fields, "s1.to.approve", "approved");
    fields.push(("op".into(), "publish".into()));
    let (status, location, body) = post(&app, &admin, designer, designer, &fields).await;
    assert_eq!(status, 303, "{body}");
    let page = flash_of(&app, &admin, &location).await;
    assert!(page.contains("已发布版本 2"), "{page}");
    let yaml = std::fs::read_to_string(dir.path().join("instrument_onboarding.yaml")).unwrap();
    assert!(
        yaml.contains("recheck:") && yaml.contains("deadline: 3 working days"),
        "{yaml}"
    );
    assert!(yaml.contains("assignees: { role: system_admin }"), "{yaml}");
    // The YAML tab shows what the designer wrote.
    let (_, raw) = app
        .get_page(&admin, "/console/workflows/instrument_onboarding")
        .await;
    assert!(raw.contains("recheck:"), "{raw}");

    // The next instrument: 平台审核 by a platform admin, then 复核 by the system admin.
    let next = submitted_instrument(&app, &mgr, unit, "新提交的电镜").await;
    let (task, state, version) = instrument_task(&app, next).await;
    assert_eq!((state.as_str(), version), ("review", 2));
    let plat = app.token("plat").await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&plat),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["state"], "recheck");
    let (task, state, _) = instrument_task(&app, next).await;
    assert_eq!(state, "recheck");
    let due: i64 = sqlx::query_scalar("SELECT due_at FROM workflow_tasks WHERE id = $1")
        .bind(task)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let expected = labshare::workflow::def::Duration::WorkingDays(3).after(app.now());
    assert!((due - expected).abs() < 60, "three working days");
    let sys = app.token("wfadmin").await;
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&sys),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["state"], "approved");

    // The running instrument kept version 1: one approval finishes it.
    let (task, state, version) = instrument_task(&app, running).await;
    assert_eq!((state.as_str(), version), ("review", 1));

    // Versions: running instances per version, the diff, moving, rolling back.
    let versions = "/console/workflows/instrument_onboarding/versions";
    let (status, html) = app.get_page(&admin, &format!("{versions}?a=1&b=2")).await;
    assert_eq!(status, 200);
    assert!(html.contains("+   recheck:"), "{html}");
    assert!(
        html.contains(&format!("#{}", version_instance(&app, running).await)),
        "{html}"
    );
    let (status, location, _) = post(
        &app,
        &admin,
        versions,
        &format!("{versions}/migrate"),
        &pairs(&[("from", "1"), ("to", "2")]),
    )
    .await;
    assert_eq!(status, 303);
    let page = flash_of(&app, &admin, &location).await;
    assert!(
        page.contains("已将 1 个进行中的流程从版本 1 迁移到版本 2"),
        "{page}"
    );
    let (_, _, version) = instrument_task(&app, running).await;
    assert_eq!(version, 2);
    let migrated: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM workflow_audit WHERE action = 'migrate'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(migrated, 1);
    assert!(matches!(
        labshare::workflow::audit::verify(&app.db).await.unwrap(),
        labshare::workflow::audit::Verdict::Intact { .. }
    ));
    // Moved to version 2, it now needs the 复核 too.
    let (status, out) = app
        .api(
            "POST",
            &format!("/api/v1/tasks/{task}/actions"),
            Some(&plat),
            Some(json!({"action": "approve"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["state"], "recheck");

    let (status, location, _) = post(
        &app,
        &admin,
        versions,
        &format!("{versions}/rollback"),
        &pairs(&[("version", "1")]),
    )
    .await;
    assert_eq!(status, 303);
    let page = flash_of(&app, &admin, &location).await;
    assert!(page.contains("版本 3 使用版本 1 的内容"), "{page}");
    let d = app
        .state
        .engine
        .definitions
        .get("instrument_onboarding")
        .unwrap();
    assert_eq!(d.version, 3);
    assert!(!d.states.contains_key("recheck"));
}

async fn version_instance(app: &TestApp, instrument: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT id FROM workflow_instances WHERE subject_type = 'instrument' AND subject_id = $1",
    )
    .bind(instrument)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn diagrams_draw_the_current_step_and_a_dry_run_path() {
    let app = spawn_app().await;
    app.create_user("dadmin", "system_admin").await;
    let admin = app.browser_login("dadmin").await;
    let (status, svg) = app
        .get_page(&admin, "/console/workflows/voucher_redemption/diagram.svg?path=review,recheck,publicity,approved")
        .await;
    assert_eq!(status, 200);
    assert_eq!(svg.matches("class=\"edge taken\"").count(), 3, "{svg}");
    assert!(svg.contains("state visited"));
    let (status, _, page) = post(
        &app,
        &admin,
        "/console/workflows/unit_certification",
        "/console/workflows/unit_certification/simulate",
        &pairs(&[
            ("subject", "{\"dishonest\": 0, \"abnormal_operation\": 0}"),
            ("script", "approve"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("diagram.svg?path=review%2Ccertified")
            || page.contains("diagram.svg?path=review,certified"),
        "{page}"
    );
}
