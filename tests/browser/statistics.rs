//! 统计分析 in a real browser (issue 16): the demo's statistics page shows every chart as an
//! SVG with its data table, a unit row drills down to that unit's level, and a chart's xlsx
//! downloads with the browser's session.

use fantoccini::Locator;

use crate::{Browser, click, common::spawn_app_with, submit};

const NOW: &str = "2026-12-01T08:00:00+08:00";

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run by .ci/run"]
async fn the_bureau_reads_the_charts_drills_into_a_unit_and_downloads_a_charts_data() {
    let app = spawn_app_with(&[("LABSHARE_NOW", NOW)]).await;
    labshare::demo::load(&app.db, &app.state.clock)
        .await
        .unwrap();
    let b = Browser::start().await;
    b.client.goto(&app.url("/login")).await.unwrap();
    for (css, v) in [("#f-username", "bureau"), ("#f-password", "Demo2026pass")] {
        let el = b.client.find(Locator::Css(css)).await.unwrap();
        el.send_keys(v).await.unwrap();
    }
    submit(&b, "//form[@action='/login']//button").await;
    b.client
        .goto(&app.url("/console/statistics?year=2026"))
        .await
        .unwrap();
    let charts = b
        .client
        .find_all(Locator::Css("section.chart"))
        .await
        .unwrap();
    assert!(charts.len() >= 10, "{} charts", charts.len());
    for c in &charts {
        // Each chart: an SVG image with a title, and its numbers as a table beside it.
        c.find(Locator::Css("svg[role='img'] title")).await.unwrap();
        let rows = c
            .find_all(Locator::Css("table.data tbody tr"))
            .await
            .unwrap();
        assert!(!rows.is_empty());
    }
    let text = b
        .client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("国家平台考核指标") && text.contains("月度服务机时"),
        "{text}"
    );
    b.screenshot("statistics").await;

    // Drill down: the first unit of 各单位仪器数量与原值.
    let link = b
        .client
        .find(Locator::Css("#t-by_unit tbody th a"))
        .await
        .unwrap();
    let unit = link.text().await.unwrap();
    submit(&b, "//table[@id='t-by_unit']//tbody//th/a").await;
    let crumbs = b
        .client
        .find(Locator::Css(".breadcrumbs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        crumbs.contains("全平台") && crumbs.contains(&unit),
        "{crumbs}"
    );
    assert!(
        b.client.find(Locator::Css("#t-by_unit")).await.is_err(),
        "a unit's level has no by-unit chart"
    );
    b.screenshot("statistics-unit").await;

    // The monthly hours as xlsx, fetched with the browser's session cookie.
    let href = b
        .client
        .find(Locator::Css("#c-monthly_hours-h ~ p a[download]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let cookies = b.client.get_all_cookies().await.unwrap();
    let header = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let res = reqwest::Client::new()
        .get(app.url(&href))
        .header("cookie", header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    let first: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(first, vec!["月份", "2026 年", "2025 年"]);
    assert_eq!(range.rows().count(), 13);
    click(&b, "//a[contains(., '全平台')]").await;
    b.close().await;
}
