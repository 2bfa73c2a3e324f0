//! Server-rendered SVG charts (图表) with plotters' SVG backend. Each chart gets a `<title>`
//! and `<desc>` and `role="img"`; the page puts the same numbers in a table beside it, so
//! nothing needs JavaScript and a screen reader or a printout loses nothing.
//!
//! Text: plotters' SVG backend writes labels as `<text>` elements and leaves the glyphs to the
//! browser, so Chinese renders with the reader's fonts and no font library is compiled in.
//! Without a font feature plotters only estimates text widths (by bytes, so Chinese is taken
//! as wider than it is); the label areas are therefore sized here, not from the estimate.

use plotters::prelude::*;
use rust_decimal::{Decimal, prelude::ToPrimitive};

use crate::statistics::series::{Chart, Kind};

/// Colour-blind-safe, dark enough on white for text contrast (Okabe–Ito, darkened).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 94, 150),
    RGBColor(196, 90, 0),
    RGBColor(0, 120, 86),
    RGBColor(160, 60, 130),
    RGBColor(90, 90, 90),
    RGBColor(150, 120, 0),
];

const FONT: &str = "sans-serif";

fn f(v: &Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Shorten a long label for an axis (the table has it in full).
fn short(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The chart as an accessible inline SVG (its `<title>`/`<desc>` and a viewBox that scales).
pub fn svg(chart: &Chart) -> String {
    let (w, h) = match chart.kind {
        Kind::HBars => (
            720u32,
            120 + 26 * chart.labels.len().max(1) as u32 * chart.series.len().clamp(1, 2) as u32,
        ),
        _ => (720, 340),
    };
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        draw(&root, chart).and_then(|_| root.present().map_err(|e| e.to_string()))
    };
    if let Err(e) = drawn {
        tracing::warn!(chart = chart.key, error = %e, "chart not drawn");
        return String::new();
    }
    let id = format!("chart-{}", chart.key);
    let head = format!(
        "<svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" class=\"chart-svg\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMinYMin meet\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        escape(&chart.title),
        escape(&chart.description)
    );
    match out.find('>') {
        Some(i) if out.starts_with("<svg") => format!("{head}{}", &out[i + 1..]),
        _ => out,
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Chart,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    if c.labels.is_empty() || c.series.is_empty() {
        root.draw(&Text::new("暂无数据", (300, 150), (FONT, 18).into_font()))
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    let n = c.labels.len();
    let stacked = c.kind == Kind::Stacked;
    // Counts and amounts share a chart only as separate series of one scale when they are the
    // same kind; a two-series "count · value" chart draws the first series (the table has both).
    let series: Vec<_> = if c.unit.contains('·') || c.key == "top_instruments" {
        c.series.iter().take(1).collect()
    } else {
        c.series.iter().collect()
    };
    let max = if stacked {
        (0..n)
            .map(|i| series.iter().map(|s| f(&s.values[i])).sum::<f64>())
            .fold(0.0, f64::max)
    } else {
        series
            .iter()
            .flat_map(|s| s.values.iter().map(f))
            .fold(0.0, f64::max)
    };
    let max = if max <= 0.0 { 1.0 } else { max * 1.1 };
    let k = if stacked { 1 } else { series.len() };
    let labels = c.labels.clone();
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if c.kind == Kind::HBars {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..max, 0f64..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y: &f64| {
                let i = y.floor() as usize;
                if (y - y.floor() - 0.5).abs() < 0.01 && i < n {
                    short(&labels[n - 1 - i], 12)
                } else {
                    String::new()
                }
            })
            .x_desc(&c.series[0].name)
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let bar = 0.8 / k as f64;
        for (si, s) in series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            chart
                .draw_series(s.values.iter().enumerate().map(|(i, v)| {
                    let y0 = (n - 1 - i) as f64 + 0.1 + bar * si as f64;
                    Rectangle::new([(0.0, y0), (f(v), y0 + bar)], color.filled())
                }))
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if k > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font((FONT, 13))
                .draw()
                .map_err(err)?;
        }
        return Ok(());
    }
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(if c.key == "by_class" { 60 } else { 36 })
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x: &f64| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < n {
                short(&labels[i], 6)
            } else {
                String::new()
            }
        })
        .y_desc(c.unit.clone())
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    let bar = 0.8 / k as f64;
    let mut base = vec![0.0; n];
    for (si, s) in series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let rects: Vec<_> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if stacked {
                    let (y0, y1) = (base[i], base[i] + f(v));
                    base[i] = y1;
                    Rectangle::new([(i as f64 + 0.1, y0), (i as f64 + 0.9, y1)], color.filled())
                } else {
                    let x0 = i as f64 + 0.1 + bar * si as f64;
                    Rectangle::new([(x0, 0.0), (x0 + bar, f(v))], color.filled())
                }
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::series::Series;

    #[test]
    fn a_chart_is_an_accessible_svg_with_chinese_text() {
        let chart = Chart {
            key: "monthly_hours",
            title: "月度服务机时".into(),
            description: "每月完成的服务机时".into(),
            kind: Kind::Bars,
            label_header: "月份".into(),
            unit: "小时".into(),
            labels: vec!["1月".into(), "2月".into()],
            ids: vec![None, None],
            drill: None,
            series: vec![
                Series {
                    name: "2026 年".into(),
                    values: vec![Decimal::new(1250, 2), Decimal::from(3)],
                },
                Series {
                    name: "2025 年".into(),
                    values: vec![Decimal::from(4), Decimal::ZERO],
                },
            ],
        };
        let svg = svg(&chart);
        assert!(
            svg.starts_with(
                "<svg role=\"img\" aria-labelledby=\"chart-monthly_hours-t chart-monthly_hours-d\""
            ),
            "{svg}"
        );
        assert!(svg.contains("<title id=\"chart-monthly_hours-t\">月度服务机时</title>"));
        assert!(
            // plotters writes a label on its own line inside <text>.
            svg.contains("1月\n</text>") && svg.contains("2026 年\n</text>"),
            "{svg}"
        );
        assert!(svg.contains("<rect"), "bars are drawn");
        assert!(!svg.contains("style="), "no inline style (CSP)");
    }
}
