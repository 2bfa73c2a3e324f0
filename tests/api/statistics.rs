//! Statistics (统计分析, issue 16): the national indicators against hand-computed values, the
//! pre-aggregated tables against the source rows (the triggers), the statistics page with its
//! charts, data tables, drill-down and xlsx, the self-check on a unit's 工作台, the platform
//! admin's 工作台 and the open data at their stable URLs.

use labshare::statistics::{self, Scope, measures};
use serde_json::{Value, json};

use crate::common::{TestApp, certified_unit};
use crate::money::{World, complete_after_service, grant, quoted, world};

/// 2026-06-15 10:00 in Xuchang.
const JUNE: i64 = 1_781_488_800;
/// 2026-03-01 10:00 in Xuchang.
const MARCH: i64 = 1_772_330_400;
/// 2025-05-10 10:00 in Xuchang.
const LAST_YEAR: i64 = 1_746_842_400;

#[allow(clippy::too_many_arguments)]
async fn instrument(
    app: &TestApp,
    unit: i64,
    name: &str,
    class: &str,
    value_fen: i64,
    status: &str,
    kind: &str,
    review: &str,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, category_code, value_fen, usage_status, instrument_type, review_status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(name)
    .bind(class)
    .bind(value_fen)
    .bind(status)
    .bind(kind)
    .bind(review)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A completed booking and its service record, written as the data docking would (Arrange).
#[allow(clippy::too_many_arguments)]
async fn record(
    app: &TestApp,
    instrument: i64,
    managing: i64,
    user_unit: i64,
    user_id: i64,
    hours_x100: i64,
    fen: i64,
    rating: Option<&str>,
    at: i64,
) -> i64 {
    let booking: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (instrument_id, unit_id, user_id, start_at, end_at, purpose, status, live, price_fen, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, '测试', 'completed', 0, $6, $4, $4) RETURNING id",
    )
    .bind(instrument)
    .bind(user_unit)
    .bind(user_id)
    .bind(at - 3600)
    .bind(at)
    .bind(fen)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let year = chrono::DateTime::from_timestamp(at + 8 * 3600, 0)
        .unwrap()
        .format("%Y")
        .to_string();
    sqlx::query_scalar(
        "INSERT INTO service_records (booking_id, order_no, instrument_id, managing_unit_id, user_unit_id, applicant_name, amount_fen, voucher_fen, \
         service_hours_x100, started_at, ended_at, completed_at, year, rating, created_at) \
         VALUES ($1, $2, $3, $4, $5, '测试', $6, 0, $7, $8, $9, $9, $10, $11, $9) RETURNING id",
    )
    .bind(booking)
    .bind(format!("T{booking}"))
    .bind(instrument)
    .bind(managing)
    .bind(user_unit)
    .bind(fen)
    .bind(hours_x100)
    .bind(at - 3600)
    .bind(at)
    .bind(year.parse::<i64>().unwrap())
    .bind(rating)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

struct Fixture {
    w: World,
    unit: i64,
    other: i64,
    r2: i64,
    i2: i64,
}

/// Unit U (许昌测试大学): I1 3,800,000.00 元 正常 通用 (from `world`), I2 200,000.00 元 待修 专用,
/// I3 600,000.00 元 正常 accepted upstream, I4 a draft. Unit V: J 1,000,000.00 元 正常.
/// Services in 2026: I1 2 h external 1,000.00 元 非常满意 (through the API), I1 5 h internal
/// 0 元, I2 3 h internal 500.00 元 一般, J 4 h external 800.00 元 基本满意; in 2025: I1 10 h.
async fn fixture() -> Fixture {
    let w = world("high_tech").await;
    let app = &w.app;
    let unit: i64 = sqlx::query_scalar("SELECT unit_id FROM instruments WHERE id = $1")
        .bind(w.instrument)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    app.create_user("owner_v", "unit_manager").await;
    let owner_v = app.token("owner_v").await;
    let other = certified_unit(app, &owner_v, "许昌第二研究院", 103, "managing", "other").await;
    let owner_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'owner'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let i2 = instrument(
        app,
        unit,
        "电化学工作站",
        "020100",
        20_000_000,
        "待修",
        "专用",
        "approved",
    )
    .await;
    let i3 = instrument(
        app,
        unit,
        "激光粒度仪",
        "010200",
        60_000_000,
        "正常",
        "通用",
        "approved",
    )
    .await;
    instrument(
        app,
        unit,
        "未提交的仪器",
        "010200",
        90_000_000,
        "正常",
        "通用",
        "draft",
    )
    .await;
    let j = instrument(
        app,
        other,
        "高效液相色谱仪",
        "010300",
        100_000_000,
        "正常",
        "通用",
        "approved",
    )
    .await;
    let batch: i64 = sqlx::query_scalar(
        "INSERT INTO report_batches (unit_id, kind, period, status, created_by, created_at, updated_at) \
         VALUES ($1, 'instruments', '2026Q2', 'pushed', $2, 0, 0) RETURNING id",
    )
    .bind(unit)
    .bind(owner_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO report_items (batch_id, record_id, national_json, upstream_status) VALUES ($1, $2, '{}', 'accepted')")
        .bind(batch)
        .bind(i3)
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Through the API: booked, confirmed with vouchers, completed, rated.
    grant(&w, 2026).await;
    let b = quoted(
        &w,
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T11:00:00+08:00",
        "1000.00",
    )
    .await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/confirm"),
            Some(&w.user),
            Some(json!({"voucher_amount": "400.00"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    complete_after_service(&w, b).await;
    let (status, body) = app
        .api(
            "POST",
            &format!("/api/v1/bookings/{b}/rating"),
            Some(&w.user),
            Some(json!({"rating": "非常满意"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let buyer: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'buyer'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    record(app, w.instrument, unit, unit, owner_id, 500, 0, None, MARCH).await;
    let r2 = record(
        app,
        i2,
        unit,
        unit,
        owner_id,
        300,
        50_000,
        Some("一般"),
        JUNE,
    )
    .await;
    record(
        app,
        j,
        other,
        w.user_unit,
        buyer,
        400,
        80_000,
        Some("基本满意"),
        JUNE,
    )
    .await;
    record(
        app,
        w.instrument,
        unit,
        w.user_unit,
        buyer,
        1000,
        99_900,
        None,
        LAST_YEAR,
    )
    .await;
    Fixture {
        w,
        unit,
        other,
        r2,
        i2,
    }
}

fn expect(body: &Value, pairs: &[(&str, Value)]) {
    for (k, v) in pairs {
        assert_eq!(&body[*k], v, "{k} in {body}");
    }
}

/// The aggregated tables give what the source rows give, for the platform and each unit.
async fn aggregates_agree(f: &Fixture) {
    let (_, policy) = labshare::money::current(&f.w.app.db).await.unwrap();
    for unit_id in [None, Some(f.unit), Some(f.other)] {
        for year in [2025, 2026] {
            let scope = Scope {
                year,
                unit_id,
                ..Default::default()
            };
            let a = measures::aggregated(&f.w.app.db, &policy.indicators, &scope)
                .await
                .unwrap();
            let r = measures::raw(&f.w.app.db, &policy.indicators, &scope)
                .await
                .unwrap();
            assert_eq!(a, r, "{year} {unit_id:?}");
        }
    }
}

#[tokio::test]
async fn national_indicators_match_hand_computed_values_for_a_unit_and_the_platform() {
    let f = fixture().await;
    let app = &f.w.app;
    app.create_user("bureau_s", "platform_admin").await;
    let admin = app.token("bureau_s").await;

    let (status, u) = app
        .api(
            "GET",
            &format!("/api/v1/statistics/indicators?year=2026&unit_id={}", f.unit),
            Some(&f.w.owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{u}");
    expect(
        &u,
        &[
            ("year", json!(2026)),
            ("unit_id", json!(f.unit)),
            ("instruments", json!(3)),
            ("instruments_reported", json!(1)),
            ("instruments_reportable", json!(2)),
            ("reported_ratio", json!("0.5000")),
            ("normal_ratio", json!("0.6667")),
            ("sharing_ratio", json!("0.6667")),
            ("external_sharing_ratio", json!("0.3333")),
            ("effective_hours", json!("10.00")),
            ("external_hours", json!("2.00")),
            ("sharing_rate", json!("0.2000")),
            ("service_income", json!("1500.00")),
            ("satisfaction_rate", json!("0.5000")),
        ],
    );
    // Income per yuan of value: (internal 500.00 + 1.5 × external 1,000.00) ÷ 4,600,000.00.
    assert_eq!(u["formulas"]["return_rate"]["value"], "0.0004");

    let (status, p) = app
        .api(
            "GET",
            "/api/v1/statistics/indicators?year=2026",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{p}");
    expect(
        &p,
        &[
            ("unit_id", Value::Null),
            ("instruments", json!(4)),
            ("instruments_reported", json!(1)),
            ("reported_ratio", json!("0.3333")),
            ("normal_ratio", json!("0.7500")),
            ("sharing_ratio", json!("0.7500")),
            ("external_sharing_ratio", json!("0.5000")),
            ("effective_hours", json!("14.00")),
            ("external_hours", json!("6.00")),
            ("sharing_rate", json!("0.4286")),
            ("service_income", json!("2300.00")),
            ("satisfaction_rate", json!("0.6667")),
        ],
    );
    let (status, last) = app
        .api(
            "GET",
            "/api/v1/statistics/indicators?year=2025",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    expect(
        &last,
        &[
            ("effective_hours", json!("10.00")),
            ("external_hours", json!("10.00")),
            ("sharing_rate", json!("1.0000")),
            ("service_income", json!("999.00")),
        ],
    );

    // Who may ask: the unit's own manager for that unit only; stats.view for any.
    let other_path = format!(
        "/api/v1/statistics/indicators?year=2026&unit_id={}",
        f.other
    );
    assert_eq!(
        app.api("GET", &other_path, Some(&f.w.owner), None).await.0,
        403
    );
    assert_eq!(
        app.api(
            "GET",
            "/api/v1/statistics/indicators?year=2026",
            Some(&f.w.owner),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.api("GET", &other_path, Some(&f.w.user), None).await.0,
        403
    );
    assert_eq!(app.api("GET", &other_path, None, None).await.0, 401);
    assert_eq!(app.api("GET", &other_path, Some(&admin), None).await.0, 200);
    let (status, body) = app
        .api(
            "GET",
            "/api/v1/statistics/indicators?year=20x6",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"]["year"]
            .as_str()
            .unwrap()
            .contains("年度")
    );
    assert_eq!(
        app.api(
            "GET",
            "/api/v1/statistics/indicators?unit_id=999999",
            Some(&admin),
            None
        )
        .await
        .0,
        404
    );

    aggregates_agree(&f).await;
}

#[tokio::test]
async fn the_aggregates_follow_every_change_in_the_same_transaction() {
    let f = fixture().await;
    let app = &f.w.app;
    aggregates_agree(&f).await;
    // A rating given later, an instrument moved to another class and city, a record withdrawn.
    sqlx::query("UPDATE service_records SET rating = '非常满意' WHERE id = $1")
        .bind(f.r2)
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE instruments SET category_code = '030100', city = '郑州市' WHERE id = $1")
        .bind(f.i2)
        .execute(&app.db.pool)
        .await
        .unwrap();
    aggregates_agree(&f).await;
    let (_, policy) = labshare::money::current(&app.db).await.unwrap();
    let scope = Scope {
        year: 2026,
        unit_id: Some(f.unit),
        ..Default::default()
    };
    let m = measures::aggregated(&app.db, &policy.indicators, &scope)
        .await
        .unwrap();
    assert_eq!(m["ratings_satisfied"].to_string(), "2");
    let zz = Scope {
        year: 2026,
        city: Some("郑州市".into()),
        ..Default::default()
    };
    let m = measures::aggregated(&app.db, &policy.indicators, &zz)
        .await
        .unwrap();
    assert_eq!(
        m["effective_hours"].to_string(),
        "3.00",
        "the record moved with its instrument"
    );
    sqlx::query("UPDATE service_records SET review_status = 'withdrawn' WHERE id = $1")
        .bind(f.r2)
        .execute(&app.db.pool)
        .await
        .unwrap();
    aggregates_agree(&f).await;
    let ind = statistics::national(&app.db, &policy, 2026, Some(f.unit))
        .await
        .unwrap();
    assert_eq!(ind.effective_hours.to_string(), "7.00");
}

#[tokio::test]
async fn the_statistics_page_draws_each_chart_beside_its_table_and_drills_down() {
    let f = fixture().await;
    let app = &f.w.app;
    app.create_user("bureau_p", "platform_admin").await;
    let console = app.browser_login("bureau_p").await;
    let (status, html) = app
        .get_page(&console, "/console/statistics?year=2026")
        .await;
    assert_eq!(status, 200, "{html}");
    for key in [
        "monthly_hours",
        "monthly_income",
        "bookings",
        "by_class",
        "by_unit",
        "by_city",
        "vouchers",
        "sharing_rate",
        "grades",
        "top_instruments",
    ] {
        assert!(
            html.contains(&format!("aria-labelledby=\"chart-{key}-t chart-{key}-d\"")),
            "chart {key}"
        );
        assert!(html.contains(&format!("id=\"t-{key}\"")), "table {key}");
        assert!(
            html.contains(&format!("/console/statistics/charts/{key}.xlsx?year=2026")),
            "xlsx {key}"
        );
    }
    // Money with separators, the platform's 2,300.00 元 and the vouchers' 50,000.00 元.
    assert!(
        html.contains("2,300.00") && html.contains("50,000.00"),
        "{html}"
    );
    assert!(html.contains("外部共享机时占比"), "sharing chart");
    // Drill down: the unit's row links to its level, its top instrument to the instrument's.
    let unit_link = format!("/console/statistics?year=2026&amp;unit_id={}", f.unit);
    assert!(html.contains(&unit_link), "{html}");
    let (status, uhtml) = app
        .get_page(
            &console,
            &format!("/console/statistics?year=2026&unit_id={}", f.unit),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        uhtml.contains("许昌测试大学")
            && uhtml.contains("1,500.00")
            && !uhtml.contains("chart-by_unit-t"),
        "{uhtml}"
    );
    let inst_link = format!("instrument_id={}", f.w.instrument);
    assert!(
        uhtml.contains(&inst_link),
        "top instruments drill to an instrument"
    );
    let (status, ihtml) = app
        .get_page(
            &console,
            &format!(
                "/console/statistics?year=2026&unit_id={}&instrument_id={}",
                f.unit, f.w.instrument
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        ihtml.contains("场发射扫描电子显微镜") && ihtml.contains("chart-monthly_hours-t"),
        "{ihtml}"
    );

    // The chart's data as xlsx: the months with this year's and last year's hours.
    let rows = crate::common::xlsx_rows(
        app,
        &console,
        &format!(
            "/console/statistics/charts/monthly_hours.xlsx?year=2026&unit_id={}",
            f.unit
        ),
    )
    .await;
    assert_eq!(rows[0], vec!["月份", "2026 年", "2025 年"]);
    assert_eq!(rows[3], vec!["3月", "5.00", "0.00"], "{rows:?}");
    assert_eq!(rows[5], vec!["5月", "0.00", "10.00"], "{rows:?}");
    assert_eq!(rows[12], vec!["12月", "2.00", "0.00"], "{rows:?}");
    // Filters narrow: the quarter, the class.
    let (_, q2) = app
        .get_page(
            &console,
            "/console/statistics?year=2026&quarter=2&category=020000",
        )
        .await;
    assert!(
        q2.contains("第 2 季度") && q2.contains(">4月<") && !q2.contains(">12月<"),
        "{q2}"
    );
    let (status, bad) = app
        .get_page(&console, "/console/statistics?year=20x6")
        .await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad.contains("年度应为"));
    let owner = app.browser_login("owner").await;
    assert_eq!(app.get_page(&owner, "/console/statistics").await.0, 403);
}

#[tokio::test]
async fn a_units_workbench_scores_the_sheet_from_todays_data_and_warns_with_reasons() {
    let f = fixture().await;
    let app = &f.w.app;
    let owner = app.browser_login("owner").await;
    let (status, html) = app.get_page(&owner, "/console").await;
    assert_eq!(status, 200);
    assert!(html.contains("许昌测试大学 · 2026 年度绩效自评"), "{html}");
    // Sharing rate 20% passes the 10% line; 参与共享 2 of 3 (66.7%) passes 50%; 正常运行
    // 2 of 3 is below 90%; satisfaction 50% is below 90%; 入网比例 50%.
    assert!(html.contains("正常运行的仪器占 66.7%，低于 90%"), "{html}");
    assert!(html.contains("用户满意率 50%，低于 90%"), "{html}");
    assert!(html.contains("入网比例 50%"), "{html}");
    assert!(
        !html.contains("外部共享机时占比 20%"),
        "no warning above the line"
    );
    // After the rating is corrected, the satisfaction warning goes at once.
    sqlx::query("UPDATE service_records SET rating = '基本满意' WHERE id = $1")
        .bind(f.r2)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (_, html) = app.get_page(&owner, "/console").await;
    assert!(!html.contains("用户满意率 50%"), "{html}");
    // The platform admin sees the platform's work instead.
    app.create_user("bureau_d", "platform_admin").await;
    let admin = app.browser_login("bureau_d").await;
    let (_, html) = app.get_page(&admin, "/console").await;
    assert!(
        html.contains("各流程待办") && html.contains("本月与上月") && html.contains("超期任务"),
        "{html}"
    );
    assert!(!html.contains("年度绩效自评"));
}

#[tokio::test]
async fn open_data_lists_published_money_and_grades_at_stable_urls() {
    let f = fixture().await;
    let app = &f.w.app;
    let owner_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'owner'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at, decided_at) VALUES ($1, 'approved', 123456789, $2, $3, $3)")
        .bind(f.unit).bind(owner_id).bind(JUNE).execute(&app.db.pool).await.unwrap();
    sqlx::query("INSERT INTO redemptions (managing_unit_id, status, total_fen, created_by, created_at) VALUES ($1, 'review', 5000, $2, $3)")
        .bind(f.unit).bind(owner_id).bind(JUNE).execute(&app.db.pool).await.unwrap();
    sqlx::query("INSERT INTO evaluations (unit_id, year, self_report, indicators, status, score_x100, grade, published_at, applicant_id, created_at) VALUES ($1, 2026, '自评', '{}', 'published', 8650, 'good', $2, $3, $2)")
        .bind(f.unit).bind(JUNE).bind(owner_id).execute(&app.db.pool).await.unwrap();
    let (pid, _) = labshare::money::current(&app.db).await.unwrap();
    let sid: i64 = sqlx::query_scalar("INSERT INTO settlements (year, policy_version_id, total_fen, status, created_at, updated_at) VALUES (2026, $1, 30000, 'published', $2, $2) RETURNING id")
        .bind(pid).bind(JUNE).fetch_one(&app.db.pool).await.unwrap();
    sqlx::query("INSERT INTO settlement_lines (settlement_id, unit_id, instrument_id, grade, income_fen, uncapped_fen, amount_fen) VALUES ($1, $2, $3, 'good', 100000, 30000, 30000)")
        .bind(sid).bind(f.unit).bind(f.w.instrument).execute(&app.db.pool).await.unwrap();

    let html = app
        .client
        .get(app.url("/open-data"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("公示数据")
            && html.contains("1,234,567.89")
            && html.contains("2026年6月15日"),
        "{html}"
    );
    assert!(
        !html.contains("50.00"),
        "a redemption under review is not published"
    );

    let res = app
        .client
        .get(app.url("/open-data/redemptions.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "id,unit,credit_code,services,amount_yuan,approved_on"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].contains(",许昌测试大学,") && lines[1].ends_with(",0,1234567.89,2026-06-15"),
        "{csv}"
    );

    let (status, j) = app.api("GET", "/open-data/grades.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(j["kind"], "grades");
    assert_eq!(j["items"][0]["unit"], "许昌测试大学");
    assert_eq!(j["items"][0]["score"], "86.50");
    assert_eq!(j["items"][0]["grade"], "良好");
    let (_, s) = app
        .api("GET", "/open-data/subsidies.json", None, None)
        .await;
    assert_eq!(s["items"][0]["amount_yuan"], "300.00");
    assert_eq!(s["items"][0]["grade"], "良好");
    assert_eq!(
        app.api("GET", "/open-data/other.csv", None, None).await.0,
        404
    );
    assert_eq!(
        app.api("GET", "/open-data/grades.xml", None, None).await.0,
        404
    );
}
