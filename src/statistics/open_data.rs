//! Open data (公示): what the public and auditors may check about public money — approved
//! voucher redemptions, published subsidy settlements per unit, and published evaluation
//! grades — as rows with stable column names, for the page, CSV and JSON.

use serde::Serialize;
use sqlx::Row;

use crate::{domain::Yuan, error::Result, store::Db};

/// The three lists, in the order of the page.
pub const KINDS: [(&str, &str); 3] = [
    ("redemptions", "创新券兑付"),
    ("subsidies", "绩效补贴下达"),
    ("grades", "绩效评价等级"),
];

/// One list: column keys with their Chinese headers, and rows of strings (as published).
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    pub kind: &'static str,
    pub title: &'static str,
    pub columns: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<String>>,
}

fn date(ts: Option<i64>) -> String {
    ts.map(|t| crate::clock::display(t).chars().take(10).collect())
        .unwrap_or_default()
}

pub async fn dataset(db: &Db, kind: &str) -> Result<Option<Dataset>> {
    let Some((kind, title)) = KINDS.iter().find(|(k, _)| *k == kind).copied() else {
        return Ok(None);
    };
    let (columns, rows): (Vec<(&'static str, &'static str)>, Vec<Vec<String>>) = match kind {
        "redemptions" => {
            let rows = sqlx::query(
                "SELECT r.id, u.name, u.credit_code, r.total_fen, r.decided_at, \
                 (SELECT CAST(COUNT(*) AS BIGINT) FROM redemption_items ri WHERE ri.redemption_id = r.id AND ri.released_at IS NULL) AS items \
                 FROM redemptions r JOIN units u ON u.id = r.managing_unit_id WHERE r.status = 'approved' ORDER BY r.decided_at DESC, r.id DESC",
            )
            .fetch_all(&db.pool)
            .await?;
            (
                vec![
                    ("id", "兑付编号"),
                    ("unit", "服务单位"),
                    ("credit_code", "统一社会信用代码"),
                    ("services", "服务项数"),
                    ("amount_yuan", "兑付金额（元）"),
                    ("approved_on", "兑付日期"),
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.get::<i64, _>("id").to_string(),
                            r.get("name"),
                            r.get("credit_code"),
                            r.get::<i64, _>("items").to_string(),
                            Yuan::from_fen(r.get("total_fen")).to_string(),
                            date(r.get("decided_at")),
                        ]
                    })
                    .collect(),
            )
        }
        "subsidies" => {
            let rows = sqlx::query(
                "SELECT s.id, s.year, u.name, u.credit_code, MIN(l.grade) AS grade, CAST(SUM(l.amount_fen) AS BIGINT) AS amount, \
                 CAST(COUNT(*) AS BIGINT) AS n, s.updated_at FROM settlements s JOIN settlement_lines l ON l.settlement_id = s.id \
                 JOIN units u ON u.id = l.unit_id WHERE s.status = 'published' GROUP BY s.id, s.year, u.id, u.name, u.credit_code, s.updated_at \
                 ORDER BY s.year DESC, s.id DESC, u.name",
            )
            .fetch_all(&db.pool)
            .await?;
            (
                vec![
                    ("settlement_id", "结算编号"),
                    ("year", "年度"),
                    ("unit", "单位"),
                    ("credit_code", "统一社会信用代码"),
                    ("grade", "绩效等级"),
                    ("instruments", "仪器台数"),
                    ("amount_yuan", "补贴金额（元）"),
                    ("published_on", "下达日期"),
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.get::<i64, _>("id").to_string(),
                            r.get::<i64, _>("year").to_string(),
                            r.get("name"),
                            r.get("credit_code"),
                            crate::money::grade_label(&r.get::<String, _>("grade")).to_string(),
                            r.get::<i64, _>("n").to_string(),
                            Yuan::from_fen(r.get("amount")).to_string(),
                            date(Some(r.get("updated_at"))),
                        ]
                    })
                    .collect(),
            )
        }
        _ => {
            let rows = sqlx::query(
                "SELECT e.year, u.name, u.credit_code, e.score_x100, e.grade, e.published_at FROM evaluations e \
                 JOIN units u ON u.id = e.unit_id WHERE e.status = 'published' ORDER BY e.year DESC, e.score_x100 DESC, u.name",
            )
            .fetch_all(&db.pool)
            .await?;
            (
                vec![
                    ("year", "年度"),
                    ("unit", "单位"),
                    ("credit_code", "统一社会信用代码"),
                    ("score", "评价得分"),
                    ("grade", "等级"),
                    ("published_on", "公示日期"),
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.get::<i64, _>("year").to_string(),
                            r.get("name"),
                            r.get("credit_code"),
                            r.get::<Option<i64>, _>("score_x100")
                                .map(|s| rust_decimal::Decimal::new(s, 2).to_string())
                                .unwrap_or_default(),
                            crate::money::grade_label(
                                &r.get::<Option<String>, _>("grade").unwrap_or_default(),
                            )
                            .to_string(),
                            date(r.get("published_at")),
                        ]
                    })
                    .collect(),
            )
        }
    };
    Ok(Some(Dataset {
        kind,
        title,
        columns,
        rows,
    }))
}

impl Dataset {
    /// RFC 4180 CSV with a UTF-8 BOM (so spreadsheet programs read the Chinese) and the
    /// stable column keys as the header.
    pub fn csv(&self) -> String {
        fn cell(s: &str) -> String {
            let s = if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.to_string()
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        }
        let mut out = String::from("\u{feff}");
        out.push_str(
            &self
                .columns
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
        for r in &self.rows {
            out.push_str(&r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// `{kind, title, columns: [{key, title}], items: [{key: value}]}`.
    pub fn json(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::Value::Object(
                    self.columns
                        .iter()
                        .zip(r)
                        .map(|((k, _), v)| (k.to_string(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            })
            .collect();
        serde_json::json!({
            "kind": self.kind,
            "title": self.title,
            "columns": self.columns.iter().map(|(k, t)| serde_json::json!({"key": k, "title": t})).collect::<Vec<_>>(),
            "items": items,
        })
    }
}
