//! Chart series (图表数据) for the statistics page, each a small table: labels down the side,
//! one column per series. The web layer draws them as SVG beside the same table and exports
//! them as xlsx. Levels: the platform, a unit, an instrument (drill-down), with filters.

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::measures::{Bind, Scope, fetch_all, instrument_conds};
use crate::{error::Result, store::Db};

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Grouped vertical bars (months, statuses).
    Bars,
    /// Horizontal bars for long labels (units, instruments).
    HBars,
    /// Stacked vertical bars (bookings by status per month).
    Stacked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub values: Vec<Decimal>,
}

/// What a label drills down to.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Drill {
    Unit,
    Instrument,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub key: &'static str,
    pub title: String,
    pub description: String,
    pub kind: Kind,
    /// Header of the label column, and the unit of the values (`小时`, `元`, `台/套`).
    pub label_header: String,
    pub unit: String,
    pub labels: Vec<String>,
    /// Per label, the id it drills down to.
    pub ids: Vec<Option<i64>>,
    pub drill: Option<Drill>,
    pub series: Vec<Series>,
}

impl Chart {
    fn new(
        key: &'static str,
        title: &str,
        description: &str,
        kind: Kind,
        label_header: &str,
        unit: &str,
    ) -> Chart {
        Chart {
            key,
            title: title.into(),
            description: description.into(),
            kind,
            label_header: label_header.into(),
            unit: unit.into(),
            labels: vec![],
            ids: vec![],
            drill: None,
            series: vec![],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.values.iter().all(|v| v.is_zero()))
    }
}

fn cents(v: i64) -> Decimal {
    Decimal::new(v, 2)
}

pub const BOOKING_STATUSES: [(&str, &str); 6] = [
    ("requested", "待报价"),
    ("quoted", "待确认"),
    ("confirmed", "已确认"),
    ("completed", "已完成"),
    ("cancelled", "已取消"),
    ("no_show", "爽约"),
];

/// Month → (hours ×100, income fen) of a year, from the aggregate (or the records for one
/// instrument).
async fn monthly(db: &Db, scope: &Scope, year: i64) -> Result<[(i64, i64); 12]> {
    let mut out = [(0, 0); 12];
    let rows = if scope.instrument_id.is_some() {
        let month = match db.backend {
            crate::store::Backend::Sqlite => {
                "CAST(strftime('%m', completed_at + 28800, 'unixepoch') AS BIGINT)"
            }
            crate::store::Backend::Postgres => {
                "CAST(to_char(to_timestamp(completed_at + 28800) AT TIME ZONE 'UTC', 'MM') AS BIGINT)"
            }
        };
        fetch_all(
            db,
            format!(
                "SELECT {month} AS month, CAST(SUM(service_hours_x100) AS BIGINT) AS h, CAST(SUM(amount_fen) AS BIGINT) AS f \
                 FROM service_records WHERE instrument_id = $1 AND year = $2 AND review_status = 'approved' GROUP BY {month}"
            ),
            vec![Bind::I(scope.instrument_id.unwrap_or(0)), Bind::I(year)],
        )
        .await?
    } else {
        let mut binds = vec![Bind::I(year)];
        let mut conds = String::new();
        if let Some(u) = scope.unit_id {
            binds.push(Bind::I(u));
            conds.push_str(&format!(" AND unit_id = ${}", binds.len()));
        }
        if let Some(c) = &scope.category {
            binds.push(Bind::S(crate::catalog::major_code(c)));
            conds.push_str(&format!(" AND category = ${}", binds.len()));
        }
        if let Some(c) = &scope.city {
            binds.push(Bind::S(c.clone()));
            conds.push_str(&format!(" AND city = ${}", binds.len()));
        }
        fetch_all(
            db,
            format!(
                "SELECT month, CAST(SUM(hours_x100) AS BIGINT) AS h, CAST(SUM(income_fen) AS BIGINT) AS f \
                 FROM stat_service_months WHERE year = $1{conds} GROUP BY month"
            ),
            binds,
        )
        .await?
    };
    for r in &rows {
        let m: i64 = r.get("month");
        if (1..=12).contains(&m) {
            out[(m - 1) as usize] = (r.get("h"), r.get("f"));
        }
    }
    Ok(out)
}

fn month_labels(scope: &Scope) -> (Vec<String>, std::ops::RangeInclusive<usize>) {
    let (from, to) = scope.months();
    let range = (from as usize - 1)..=(to as usize - 1);
    (
        range.clone().map(|m| format!("{}月", m + 1)).collect(),
        range,
    )
}

/// Service hours and income by month, this year against last year.
pub async fn monthly_charts(db: &Db, scope: &Scope) -> Result<Vec<Chart>> {
    let this = monthly(db, scope, scope.year).await?;
    let last = monthly(db, scope, scope.year - 1).await?;
    let (labels, range) = month_labels(scope);
    let (y, p) = (
        format!("{} 年", scope.year),
        format!("{} 年", scope.year - 1),
    );
    let mut hours = Chart::new(
        "monthly_hours",
        "月度服务机时（本年与上年）",
        &format!("每月完成的服务机时，{y}与{p}对比。"),
        Kind::Bars,
        "月份",
        "小时",
    );
    let mut income = Chart::new(
        "monthly_income",
        "月度服务收入（本年与上年）",
        &format!("每月完成的服务金额，{y}与{p}对比。"),
        Kind::Bars,
        "月份",
        "元",
    );
    hours.labels = labels.clone();
    income.labels = labels;
    let pick = |a: &[(i64, i64); 12], hours: bool| -> Vec<Decimal> {
        range
            .clone()
            .map(|m| cents(if hours { a[m].0 } else { a[m].1 }))
            .collect()
    };
    hours.series = vec![
        Series {
            name: y.clone(),
            values: pick(&this, true),
        },
        Series {
            name: p.clone(),
            values: pick(&last, true),
        },
    ];
    income.series = vec![
        Series {
            name: y,
            values: pick(&this, false),
        },
        Series {
            name: p,
            values: pick(&last, false),
        },
    ];
    Ok(vec![hours, income])
}

/// Bookings by the month they start and their status.
pub async fn bookings_chart(db: &Db, scope: &Scope) -> Result<Chart> {
    let mut c = Chart::new(
        "bookings",
        "预约按状态的月度变化",
        "按预约开始月份统计的预约数量，按状态分层。",
        Kind::Stacked,
        "月份",
        "次",
    );
    let (labels, range) = month_labels(scope);
    let rows = if let Some(id) = scope.instrument_id {
        let (y, m) = match db.backend {
            crate::store::Backend::Sqlite => (
                "CAST(strftime('%Y', start_at + 28800, 'unixepoch') AS BIGINT)",
                "CAST(strftime('%m', start_at + 28800, 'unixepoch') AS BIGINT)",
            ),
            crate::store::Backend::Postgres => (
                "CAST(to_char(to_timestamp(start_at + 28800) AT TIME ZONE 'UTC', 'YYYY') AS BIGINT)",
                "CAST(to_char(to_timestamp(start_at + 28800) AT TIME ZONE 'UTC', 'MM') AS BIGINT)",
            ),
        };
        fetch_all(
            db,
            format!(
                "SELECT {m} AS month, status, CAST(COUNT(*) AS BIGINT) AS n FROM bookings WHERE instrument_id = $1 AND {y} = $2 GROUP BY {m}, status"
            ),
            vec![Bind::I(id), Bind::I(scope.year)],
        )
        .await?
    } else {
        let mut binds = vec![Bind::I(scope.year)];
        let mut conds = String::new();
        if let Some(u) = scope.unit_id {
            binds.push(Bind::I(u));
            conds = " AND unit_id = $2".into();
        }
        fetch_all(
            db,
            format!(
                "SELECT month, status, CAST(SUM(n) AS BIGINT) AS n FROM stat_booking_months WHERE year = $1{conds} GROUP BY month, status"
            ),
            binds,
        )
        .await?
    };
    let mut grid = vec![vec![Decimal::ZERO; 12]; BOOKING_STATUSES.len()];
    for r in &rows {
        let m: i64 = r.get("month");
        let status: String = r.get("status");
        if let Some(i) = BOOKING_STATUSES.iter().position(|(k, _)| *k == status)
            && (1..=12).contains(&m)
        {
            grid[i][(m - 1) as usize] += Decimal::from(r.get::<i64, _>("n"));
        }
    }
    c.labels = labels;
    c.series = BOOKING_STATUSES
        .iter()
        .zip(grid)
        .map(|((_, l), v)| Series {
            name: (*l).into(),
            values: range.clone().map(|m| v[m]).collect(),
        })
        .filter(|s| s.values.iter().any(|v| !v.is_zero()))
        .collect();
    Ok(c)
}

/// Approved instruments (count and value in 万元) grouped by class, unit or city.
pub async fn instruments_by(db: &Db, scope: &Scope, by: &str) -> Result<Chart> {
    let (key, title, header, group, label): (&'static str, &str, &str, &str, &str) = match by {
        "unit" => (
            "by_unit",
            "各单位仪器数量与原值",
            "管理单位",
            "s.unit_id",
            "u.name",
        ),
        "city" => (
            "by_city",
            "各城市仪器数量与原值",
            "城市",
            "s.city",
            "s.city",
        ),
        _ => (
            "by_class",
            "各类仪器数量与原值",
            "仪器分类",
            "substr(s.category, 1, 2)",
            "substr(s.category, 1, 2)",
        ),
    };
    let mut c = Chart::new(
        key,
        title,
        "已审核入网仪器的数量（台/套）与原值（万元），按数量从多到少。",
        if by == "class" {
            Kind::Bars
        } else {
            Kind::HBars
        },
        header,
        "台/套 · 万元",
    );
    let (conds, binds) = super::measures::stat_conds(scope, "s.", 1);
    let rows = fetch_all(
        db,
        format!(
            "SELECT {group} AS g, MIN({label}) AS label, CAST(SUM(s.n) AS BIGINT) AS n, CAST(COALESCE(SUM(s.value_fen), 0) AS BIGINT) AS v \
             FROM stat_instrument_counts s JOIN units u ON u.id = s.unit_id WHERE s.n <> 0{conds} \
             GROUP BY {group} ORDER BY n DESC, MIN({label}) LIMIT 15"
        ),
        binds,
    )
    .await?;
    let mut n = Vec::new();
    let mut v = Vec::new();
    for r in &rows {
        let label: String = r.get("label");
        c.labels.push(if by == "class" {
            crate::catalog::class_label(&format!("{label}0000"))
        } else {
            label
        });
        c.ids.push(if by == "unit" {
            Some(r.get::<i64, _>("g"))
        } else {
            None
        });
        n.push(Decimal::from(r.get::<i64, _>("n")));
        v.push((Decimal::new(r.get("v"), 2) / Decimal::from(10_000)).round_dp(2));
    }
    if by == "unit" {
        c.drill = Some(Drill::Unit);
    }
    c.series = vec![
        Series {
            name: "仪器数量（台/套）".into(),
            values: n,
        },
        Series {
            name: "原值（万元）".into(),
            values: v,
        },
    ];
    Ok(c)
}

/// The voucher ledger of the year by kind: granted, reserved, redeemed, expired (and released).
pub async fn voucher_flow(db: &Db, scope: &Scope) -> Result<Chart> {
    let mut c = Chart::new(
        "vouchers",
        "创新券流向",
        "本年度创新券台账各类金额：发放、冻结、兑付、过期、释放（元）。",
        Kind::Bars,
        "环节",
        "元",
    );
    let rows = fetch_all(
        db,
        "SELECT kind, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS v FROM voucher_ledger WHERE year = $1 GROUP BY kind".into(),
        vec![Bind::I(scope.year)],
    )
    .await?;
    let kinds = [
        ("grant", "发放"),
        ("reserve", "冻结"),
        ("redeem", "兑付"),
        ("expire", "过期"),
        ("release", "释放"),
    ];
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>("kind") == k)
            .map(|r| cents(r.get("v")))
            .unwrap_or_default()
    };
    c.labels = kinds.iter().map(|(_, l)| l.to_string()).collect();
    c.series = vec![Series {
        name: "金额（元）".into(),
        values: kinds.iter().map(|(k, _)| get(k)).collect(),
    }];
    Ok(c)
}

/// External hours ÷ effective hours per unit (the 15 units with the most hours).
pub async fn sharing_by_unit(db: &Db, scope: &Scope) -> Result<Chart> {
    let mut c = Chart::new(
        "sharing_rate",
        "各单位外部共享机时占比",
        "对外服务机时 ÷ 有效服务机时（%），服务机时最多的 15 个单位。",
        Kind::HBars,
        "管理单位",
        "%",
    );
    let (from, to) = scope.months();
    // The platform level only (no unit): the class and city filters.
    let (conds, more) = super::measures::stat_conds(scope, "s.", 4);
    let mut binds = vec![Bind::I(scope.year), Bind::I(from), Bind::I(to)];
    binds.extend(more);
    let rows = fetch_all(
        db,
        format!(
            "SELECT s.unit_id, MIN(u.name) AS name, CAST(SUM(s.hours_x100) AS BIGINT) AS h, CAST(SUM(s.external_hours_x100) AS BIGINT) AS e \
             FROM stat_service_months s JOIN units u ON u.id = s.unit_id WHERE s.year = $1 AND s.month >= $2 AND s.month <= $3{conds} \
             GROUP BY s.unit_id HAVING SUM(s.hours_x100) > 0 ORDER BY SUM(s.hours_x100) DESC, s.unit_id LIMIT 15"
        ),
        binds,
    )
    .await?;
    let mut v = Vec::new();
    for r in &rows {
        c.labels.push(r.get("name"));
        c.ids.push(Some(r.get("unit_id")));
        let (h, e): (i64, i64) = (r.get("h"), r.get("e"));
        v.push((Decimal::from(e) * Decimal::ONE_HUNDRED / Decimal::from(h.max(1))).round_dp(1));
    }
    c.drill = Some(Drill::Unit);
    c.series = vec![Series {
        name: "外部共享机时占比（%）".into(),
        values: v,
    }];
    Ok(c)
}

/// Published evaluation grades of the year.
pub async fn grades_chart(db: &Db, scope: &Scope) -> Result<Chart> {
    let mut c = Chart::new(
        "grades",
        "绩效评价等级分布",
        "本年度已定级公示的绩效评价结果（家）。",
        Kind::Bars,
        "等级",
        "家",
    );
    let rows = fetch_all(
        db,
        "SELECT grade, CAST(COUNT(*) AS BIGINT) AS n FROM evaluations WHERE year = $1 AND status = 'published' GROUP BY grade".into(),
        vec![Bind::I(scope.year)],
    )
    .await?;
    c.labels = crate::money::GRADES
        .iter()
        .map(|(_, l)| l.to_string())
        .collect();
    c.series = vec![Series {
        name: "单位数".into(),
        values: crate::money::GRADES
            .iter()
            .map(|(g, _)| {
                rows.iter()
                    .find(|r| r.get::<Option<String>, _>("grade").as_deref() == Some(*g))
                    .map(|r| Decimal::from(r.get::<i64, _>("n")))
                    .unwrap_or_default()
            })
            .collect(),
    }];
    Ok(c)
}

/// The ten instruments with the most service hours in the year.
pub async fn top_instruments(db: &Db, scope: &Scope) -> Result<Chart> {
    let mut c = Chart::new(
        "top_instruments",
        "服务机时最多的仪器",
        "本年度服务机时最多的 10 台仪器（小时）。",
        Kind::HBars,
        "仪器",
        "小时",
    );
    let (conds, mut binds) = instrument_conds(scope, "i", 2);
    binds.insert(0, Bind::I(scope.year));
    let rows = fetch_all(
        db,
        format!(
            "SELECT s.instrument_id, i.name, s.hours_x100, s.income_fen, s.services FROM stat_instrument_years s \
             JOIN instruments i ON i.id = s.instrument_id WHERE s.year = $1 AND s.hours_x100 > 0{conds} \
             ORDER BY s.hours_x100 DESC, s.services DESC, s.instrument_id DESC LIMIT 10"
        ),
        binds,
    )
    .await?;
    let (mut h, mut f, mut n) = (vec![], vec![], vec![]);
    for r in &rows {
        c.labels.push(r.get("name"));
        c.ids.push(Some(r.get("instrument_id")));
        h.push(cents(r.get("hours_x100")));
        f.push(cents(r.get("income_fen")));
        n.push(Decimal::from(r.get::<i64, _>("services")));
    }
    c.drill = Some(Drill::Instrument);
    c.series = vec![
        Series {
            name: "服务机时（小时）".into(),
            values: h,
        },
        Series {
            name: "服务收入（元）".into(),
            values: f,
        },
        Series {
            name: "服务次数".into(),
            values: n,
        },
    ];
    Ok(c)
}

/// Every chart of a level: the platform (no unit), a unit, or one instrument.
/// The charts' queries are independent reads: they run at once, on as many pooled
/// connections, and come back in this order.
pub async fn charts(db: &Db, scope: &Scope) -> Result<Vec<Chart>> {
    type One<'a> = futures::future::BoxFuture<'a, Result<Chart>>;
    let mut rest: Vec<One<'_>> = vec![Box::pin(bookings_chart(db, scope))];
    if scope.instrument_id.is_none() {
        rest.push(Box::pin(instruments_by(db, scope, "class")));
        if scope.unit_id.is_none() {
            rest.push(Box::pin(instruments_by(db, scope, "unit")));
            rest.push(Box::pin(instruments_by(db, scope, "city")));
            rest.push(Box::pin(voucher_flow(db, scope)));
            rest.push(Box::pin(sharing_by_unit(db, scope)));
            rest.push(Box::pin(grades_chart(db, scope)));
        }
        rest.push(Box::pin(top_instruments(db, scope)));
    }
    let (mut out, rest) = futures::future::try_join(
        monthly_charts(db, scope),
        futures::future::try_join_all(rest),
    )
    .await?;
    out.extend(rest);
    Ok(out)
}

/// The instrument's name, for the drill-down's breadcrumb.
pub async fn instrument_name(db: &Db, id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM instruments WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// The filters' choices: cities with approved instruments, and certified managing units.
pub async fn filter_options(db: &Db) -> Result<(Vec<String>, Vec<(i64, String)>)> {
    let cities = sqlx::query_scalar(
        "SELECT DISTINCT city FROM stat_instrument_counts WHERE n > 0 ORDER BY city",
    )
    .fetch_all(&db.pool)
    .await?;
    let units = sqlx::query_as(
        "SELECT id, name FROM units WHERE kind = 'managing' AND certification_status = 'certified' ORDER BY name LIMIT 500",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok((cities, units))
}
