//! Money (资金): the policy file with the voucher and subsidy rules, bookings, the voucher
//! ledger and the subsidy computation. All amounts are `Yuan` (two places, half-up).

pub mod bookings;
pub mod hooks;
pub mod redemptions;
pub mod settlement;
pub mod testing;
pub mod vouchers;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::WriteQuery;
use crate::{
    domain::Yuan,
    error::{AppError, Result},
    store::Db,
};

pub const DEFAULT_POLICY: &str = include_str!("default_policy.yaml");
pub const GRADES: [(&str, &str); 4] = [
    ("excellent", "优秀"),
    ("good", "良好"),
    ("qualified", "合格"),
    ("unqualified", "不合格"),
];

/// 优秀, 良好, … for a grade key; empty for anything else.
pub fn grade_label(grade: &str) -> &'static str {
    GRADES
        .iter()
        .find(|(g, _)| *g == grade)
        .map(|(_, l)| *l)
        .unwrap_or("")
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VoucherRules {
    pub max_ratio: Decimal,
    pub yearly_quota: BTreeMap<String, Yuan>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SubsidyRules {
    pub coefficients: BTreeMap<String, Decimal>,
    pub cap_per_instrument: Yuan,
    pub cap_per_unit: Yuan,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRules {
    pub thresholds: BTreeMap<String, u32>,
    /// How the experts' totals combine: `trimmed_mean` (drop one highest and one lowest
    /// when there are at least three) or `mean`.
    #[serde(default = "default_aggregate")]
    pub aggregate: String,
    /// The scoring sheet: each item's most points; together they make 100.
    #[serde(default = "default_indicators")]
    pub indicators: Vec<ScoreItem>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScoreItem {
    pub key: String,
    pub title: String,
    pub max: u32,
    /// What the expert looks at (shown beside the score box).
    #[serde(default)]
    pub hint: String,
}

fn default_aggregate() -> String {
    "trimmed_mean".into()
}

fn default_indicators() -> Vec<ScoreItem> {
    let item = |key: &str, title: &str, max: u32, hint: &str| ScoreItem {
        key: key.into(),
        title: title.into(),
        max,
        hint: hint.into(),
    };
    vec![
        item("usage", "运行使用", 25, "有效工作机时、服务次数"),
        item("sharing", "开放共享", 30, "对外服务机时、共享率"),
        item("results", "服务成效", 25, "服务收入、创新券兑付"),
        item("satisfaction", "用户评价", 10, "用户满意度"),
        item("management", "管理制度", 10, "自评报告、管理制度与队伍"),
    ]
}

/// The money rules.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub voucher: VoucherRules,
    pub subsidy: SubsidyRules,
    pub evaluation: EvaluationRules,
    /// Booking rules (no-shows, waitlist offers); versions stored before they existed get
    /// the defaults.
    #[serde(default)]
    pub booking: bookings::BookingRules,
    /// National indicators as formulas, the self-check and its warnings (issue 16).
    #[serde(default)]
    pub indicators: crate::statistics::IndicatorRules,
}

impl Policy {
    /// Parse and validate policy YAML; errors name the line where the parser knows it.
    pub fn parse(text: &str) -> std::result::Result<Policy, Vec<String>> {
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut errors = Vec::new();
        if p.voucher.max_ratio <= Decimal::ZERO || p.voucher.max_ratio > Decimal::ONE {
            errors.push("voucher.max_ratio 必须大于 0 且不超过 1".to_string());
        }
        for key in p.voucher.yearly_quota.keys() {
            if !crate::units::ENTERPRISE_TYPES.iter().any(|(k, _)| k == key) {
                errors.push(format!("voucher.yearly_quota 中的企业类型 {key} 未知"));
            }
        }
        for (grade, _) in GRADES {
            match p.subsidy.coefficients.get(grade) {
                None => errors.push(format!("subsidy.coefficients 缺少等级 {grade}")),
                Some(c) if *c < Decimal::ZERO || *c > Decimal::ONE => {
                    errors.push(format!("subsidy.coefficients.{grade} 必须在 0 到 1 之间"))
                }
                _ => {}
            }
        }
        for key in p.subsidy.coefficients.keys() {
            if !GRADES.iter().any(|(g, _)| g == key) {
                errors.push(format!("subsidy.coefficients 中的等级 {key} 未知"));
            }
        }
        let t = &p.evaluation.thresholds;
        match (t.get("excellent"), t.get("good"), t.get("qualified")) {
            (Some(e), Some(g), Some(q)) if e > g && g > q && *e <= 100 => {}
            _ => errors.push(
                "evaluation.thresholds 需要 excellent > good > qualified（不超过 100）".into(),
            ),
        }
        let e = &p.evaluation;
        if e.aggregate != "trimmed_mean" && e.aggregate != "mean" {
            errors.push("evaluation.aggregate 应为 trimmed_mean 或 mean".into());
        }
        let mut keys = std::collections::BTreeSet::new();
        for item in &e.indicators {
            if item.key.is_empty() || !keys.insert(item.key.as_str()) {
                errors.push(format!(
                    "evaluation.indicators 的 key `{}` 为空或重复",
                    item.key
                ));
            }
            if item.max == 0 {
                errors.push(format!(
                    "evaluation.indicators.{} 的 max 必须大于 0",
                    item.key
                ));
            }
        }
        if e.indicators.iter().map(|i| i.max).sum::<u32>() != 100 {
            errors.push("evaluation.indicators 各项满分之和必须为 100".into());
        }
        errors.extend(p.booking.problems());
        let sheet: Vec<(String, u32)> = e
            .indicators
            .iter()
            .map(|i| (i.key.clone(), i.max))
            .collect();
        errors.extend(p.indicators.check(&sheet));
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }

    pub fn quota_for(&self, enterprise_type: &str) -> Yuan {
        self.voucher
            .yearly_quota
            .get(enterprise_type)
            .copied()
            .unwrap_or(Yuan::ZERO)
    }

    pub fn coefficient(&self, grade: &str) -> Decimal {
        self.subsidy
            .coefficients
            .get(grade)
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    /// The grade for a score by the thresholds (优秀 ≥ 90, 良好 ≥ 75, 合格 ≥ 60 by default).
    pub fn grade_for(&self, score: Decimal) -> &'static str {
        let t = |k: &str| {
            Decimal::from(
                self.evaluation
                    .thresholds
                    .get(k)
                    .copied()
                    .unwrap_or(u32::MAX),
            )
        };
        if score >= t("excellent") {
            "excellent"
        } else if score >= t("good") {
            "good"
        } else if score >= t("qualified") {
            "qualified"
        } else {
            "unqualified"
        }
    }
}

/// A unit's final grade for a year, the one the settlement uses: from an evaluation or
/// recorded by hand (`source`); a later one replaces it.
pub struct UnitGrade<'a> {
    pub unit_id: i64,
    pub year: i64,
    pub grade: &'a str,
    pub reason: &'a str,
    pub source: &'a str,
    pub decided_by: i64,
    /// Why a published evaluation result is overridden (empty otherwise).
    pub override_reason: &'a str,
}

/// Record a grade by hand (`PUT /units/{id}/grades/{year}`). Over a published evaluation
/// result (绩效评价结果已公示) it is refused with 409 `grade_published` unless an
/// `override_reason` is given; either way the change is in `grade_changes`.
pub async fn set_grade_by_hand(db: &Db, g: UnitGrade<'_>, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let published: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM evaluations WHERE unit_id = $1 AND year = $2 AND status = 'published'",
    )
    .bind(g.unit_id)
    .bind(g.year)
    .fetch_optional(&mut *tx)
    .await?;
    if published.is_some() && g.override_reason.trim().is_empty() {
        return Err(AppError::conflict(
            "grade_published",
            "该单位本年度的绩效评价结果已公示：修改等级须填写调整理由（override_reason）",
        ));
    }
    record_grade(&mut tx, g, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Replace the unit's grade for the year and log the change (who, old, new, why).
pub async fn record_grade(conn: &mut crate::store::Conn, g: UnitGrade<'_>, now: i64) -> Result<()> {
    let old: Option<String> =
        sqlx::query_scalar("SELECT grade FROM unit_grades WHERE unit_id = $1 AND year = $2")
            .bind(g.unit_id)
            .bind(g.year)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO grade_changes (unit_id, year, old_grade, new_grade, source, reason, override_reason, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(g.unit_id)
    .bind(g.year)
    .bind(old)
    .bind(g.grade)
    .bind(g.source)
    .bind(g.reason)
    .bind(g.override_reason.trim())
    .bind(g.decided_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM unit_grades WHERE unit_id = $1 AND year = $2")
        .bind(g.unit_id)
        .bind(g.year)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO unit_grades (unit_id, year, grade, reason, source, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(g.unit_id)
    .bind(g.year)
    .bind(g.grade)
    .bind(g.reason)
    .bind(g.source)
    .bind(g.decided_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The policy in force and its version id.
pub async fn current(db: &Db) -> Result<(i64, Policy)> {
    let mut conn = db.acquire().await?;
    if let Some(found) = stored(&mut conn).await? {
        return Ok(found);
    }
    drop(conn);
    let id = publish(db, DEFAULT_POLICY, None, 0).await?;
    let p = Policy::parse(DEFAULT_POLICY).map_err(|e| {
        AppError::Internal(anyhow::anyhow!("default policy invalid: {}", e.join("; ")))
    })?;
    Ok((id, p))
}

/// The policy in force, read on a connection already in use (e.g. inside a workflow hook's
/// transaction). The default policy is stored at startup, so one is always there.
pub async fn current_in(conn: &mut crate::store::Conn) -> Result<(i64, Policy)> {
    stored(conn)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no policy version stored")))
}

async fn stored(conn: &mut crate::store::Conn) -> Result<Option<(i64, Policy)>> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, content FROM policy_versions ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let Some((id, content)) = row else {
        return Ok(None);
    };
    let p = Policy::parse(&content).map_err(|e| {
        AppError::Internal(anyhow::anyhow!("stored policy invalid: {}", e.join("; ")))
    })?;
    Ok(Some((id, p)))
}

/// Validate and store a new policy version (the same content twice is one version).
pub async fn publish(db: &Db, text: &str, user_id: Option<i64>, now: i64) -> Result<i64> {
    if let Err(errors) = Policy::parse(text) {
        return Err(AppError::Unprocessable {
            code: "invalid_policy",
            message: format!("资金规则有误：{}", errors.join("；")),
        });
    }
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let latest: Option<(i64, String)> =
        sqlx::query_as("SELECT id, content_hash FROM policy_versions ORDER BY id DESC LIMIT 1")
            .fetch_optional(&db.pool)
            .await?;
    if let Some((id, h)) = latest
        && h == hash
    {
        return Ok(id);
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO policy_versions (content, content_hash, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(text)
    .bind(&hash)
    .bind(user_id)
    .bind(now)
    .write(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_says_what_the_brief_says() {
        let p = Policy::parse(DEFAULT_POLICY).unwrap();
        assert_eq!(p.voucher.max_ratio, Decimal::from_str("0.40").unwrap());
        assert_eq!(p.quota_for("high_tech").to_string(), "50000.00");
        assert_eq!(p.quota_for("tech_sme").to_string(), "30000.00");
        assert_eq!(p.quota_for("innovation_team").to_string(), "30000.00");
        assert_eq!(p.quota_for("other"), Yuan::ZERO);
        assert_eq!(p.coefficient("good"), Decimal::from_str("0.30").unwrap());
        assert_eq!(
            p.coefficient("qualified"),
            Decimal::from_str("0.15").unwrap()
        );
        assert_eq!(p.subsidy.cap_per_unit.to_string(), "200000.00");
        assert_eq!(p.grade_for(Decimal::from(90)), "excellent");
        assert_eq!(p.grade_for(Decimal::from_str("89.99").unwrap()), "good");
        assert_eq!(p.grade_for(Decimal::from(60)), "qualified");
        assert_eq!(
            p.grade_for(Decimal::from_str("59.5").unwrap()),
            "unqualified"
        );
    }

    #[test]
    fn an_invalid_policy_is_refused_with_reasons() {
        let bad = DEFAULT_POLICY.replace("max_ratio: \"0.40\"", "max_ratio: \"1.40\"");
        let errs = Policy::parse(&bad).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("max_ratio")), "{errs:?}");
        let bad = DEFAULT_POLICY.replace("qualified: \"0.15\"", "qualifed: \"0.15\"");
        assert!(Policy::parse(&bad).is_err());
        assert!(Policy::parse("voucher: [").is_err());
    }
}
