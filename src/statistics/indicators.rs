//! National indicators (国家平台考核指标) for a unit or the platform, evaluated from the
//! policy's formulas, and the live self-check (实时自评): the evaluation sheet scored from
//! today's figures, the grade it would give, and warnings with their reasons.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::Serialize;

use super::{
    formulas::Expr,
    measures::{self, Measures, Scope},
};
use crate::{domain::Yuan, error::Result, money::Policy, store::Db};

/// Half-up to `dp` places, always written with them (`0.1` → `0.1000`).
pub fn fixed(v: Decimal, dp: u32) -> Decimal {
    let mut v = v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    v.rescale(dp);
    v
}

/// One evaluated formula.
#[derive(Debug, Clone, Serialize)]
pub struct FormulaValue {
    pub title: String,
    pub expr: String,
    pub value: Decimal,
}

/// The contract's shape (`GET /api/v1/statistics/indicators`); ratios with four places.
#[derive(Debug, Clone, Serialize)]
pub struct NationalIndicators {
    pub year: i64,
    pub unit_id: Option<i64>,
    pub instruments: i64,
    pub instruments_reported: i64,
    pub normal_ratio: Decimal,
    pub sharing_ratio: Decimal,
    pub external_sharing_ratio: Decimal,
    pub effective_hours: Decimal,
    pub external_hours: Decimal,
    pub sharing_rate: Decimal,
    pub service_income: Yuan,
    pub satisfaction_rate: Decimal,
    /// Beyond the contract: 入网比例 and its denominator, and every formula of the policy.
    pub instruments_reportable: i64,
    pub reported_ratio: Decimal,
    pub formulas: BTreeMap<String, FormulaValue>,
}

/// Every formula of the policy over the measures, four places.
pub fn evaluate(policy: &Policy, m: &Measures) -> BTreeMap<String, FormulaValue> {
    policy
        .indicators
        .formulas
        .iter()
        .map(|(k, f)| {
            let value = Expr::parse(&f.expr)
                .map(|e| fixed(e.eval(m), 4))
                .unwrap_or_else(|_| fixed(Decimal::ZERO, 4));
            (
                k.clone(),
                FormulaValue {
                    title: f.title.clone(),
                    expr: f.expr.clone(),
                    value,
                },
            )
        })
        .collect()
}

fn count(m: &Measures, k: &str) -> i64 {
    m.get(k).and_then(|d| i64::try_from(*d).ok()).unwrap_or(0)
}

pub fn from_measures(
    policy: &Policy,
    year: i64,
    unit_id: Option<i64>,
    m: &Measures,
) -> NationalIndicators {
    let formulas = evaluate(policy, m);
    let ratio = |k: &str| {
        formulas
            .get(k)
            .map(|f| f.value)
            .unwrap_or_else(|| fixed(Decimal::ZERO, 4))
    };
    let hours = |k: &str| fixed(m.get(k).copied().unwrap_or_default(), 2);
    NationalIndicators {
        year,
        unit_id,
        instruments: count(m, "instruments"),
        instruments_reported: count(m, "instruments_reported"),
        normal_ratio: ratio("normal_ratio"),
        sharing_ratio: ratio("sharing_ratio"),
        external_sharing_ratio: ratio("external_sharing_ratio"),
        effective_hours: hours("effective_hours"),
        external_hours: hours("external_hours"),
        sharing_rate: ratio("sharing_rate"),
        service_income: Yuan::from_fen(
            (hours("service_income") * Decimal::ONE_HUNDRED)
                .to_i64()
                .unwrap_or(0),
        ),
        satisfaction_rate: ratio("satisfaction_rate"),
        instruments_reportable: count(m, "instruments_reportable"),
        reported_ratio: ratio("reported_ratio"),
        formulas,
    }
}

/// The national indicators of a unit (or the platform with `None`) for a year.
pub async fn national(
    db: &Db,
    policy: &Policy,
    year: i64,
    unit_id: Option<i64>,
) -> Result<NationalIndicators> {
    let scope = Scope {
        year,
        unit_id,
        ..Default::default()
    };
    let m = measures::aggregated(db, &policy.indicators, &scope).await?;
    Ok(from_measures(policy, year, unit_id, &m))
}

/// One sheet item of the self-check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    pub key: String,
    pub title: String,
    pub max: u32,
    pub score: Decimal,
    /// How each term contributed: indicator title, value, full_at, points earned of points.
    pub terms: Vec<CheckTerm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckTerm {
    pub indicator: String,
    pub title: String,
    pub value: Decimal,
    pub full_at: Decimal,
    pub points: Decimal,
    pub earned: Decimal,
}

/// The self-check of a unit as of today.
#[derive(Debug, Clone, Serialize)]
pub struct SelfCheck {
    pub year: i64,
    pub unit_id: i64,
    pub items: Vec<CheckItem>,
    pub score: Decimal,
    pub grade: &'static str,
    pub grade_label: &'static str,
    pub warnings: Vec<String>,
    pub indicators: NationalIndicators,
}

/// A ratio as a whole percentage when whole, else with one place (`0.06` → `6%`, `0.125` → `12.5%`).
pub fn percent_text(v: Decimal) -> String {
    let p = (v * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
    format!("{}%", p.normalize())
}

/// Score the policy's evaluation sheet from the indicators; items without terms score 0 and
/// say so (they are judged by the experts).
pub fn self_check_from(policy: &Policy, ind: NationalIndicators, unit_id: i64) -> SelfCheck {
    let rules = &policy.indicators;
    let mut items = Vec::new();
    let mut total = Decimal::ZERO;
    for item in &policy.evaluation.indicators {
        let mut terms = Vec::new();
        let mut score = Decimal::ZERO;
        for t in rules.self_check.get(&item.key).into_iter().flatten() {
            let f = ind.formulas.get(&t.indicator);
            let value = f.map(|f| f.value).unwrap_or_default();
            let share = (value / t.full_at).min(Decimal::ONE).max(Decimal::ZERO);
            let earned = fixed(t.points * share, 2);
            score += earned;
            terms.push(CheckTerm {
                indicator: t.indicator.clone(),
                title: f.map(|f| f.title.clone()).unwrap_or_default(),
                value,
                full_at: t.full_at,
                points: t.points,
                earned,
            });
        }
        total += score;
        items.push(CheckItem {
            key: item.key.clone(),
            title: item.title.clone(),
            max: item.max,
            score: fixed(score, 2),
            terms,
        });
    }
    let warnings = rules
        .warnings
        .iter()
        .filter_map(|w| {
            let v = ind.formulas.get(&w.indicator)?.value;
            (v < w.below).then(|| {
                w.message
                    .replace("{value}", &percent_text(v))
                    .replace("{limit}", &percent_text(w.below))
            })
        })
        .collect();
    let score = fixed(total, 2);
    let grade = policy.grade_for(score);
    SelfCheck {
        year: ind.year,
        unit_id,
        items,
        score,
        grade,
        grade_label: crate::money::grade_label(grade),
        warnings,
        indicators: ind,
    }
}

pub async fn self_check(db: &Db, policy: &Policy, year: i64, unit_id: i64) -> Result<SelfCheck> {
    let ind = national(db, policy, year, Some(unit_id)).await?;
    Ok(self_check_from(policy, ind, unit_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_external_share_warns_with_the_reason_and_lowers_the_sharing_score() {
        let policy = Policy::parse(crate::money::DEFAULT_POLICY).unwrap();
        let mut m = Measures::new();
        for (k, v) in [
            ("instruments", 10),
            ("instruments_normal", 10),
            ("instruments_shared", 10),
            ("instruments_shared_external", 5),
            ("general_instruments", 10),
            ("effective_hours", 100),
            ("external_hours", 6),
            ("ratings", 10),
            ("ratings_satisfied", 9),
        ] {
            m.insert(k.into(), Decimal::from(v));
        }
        let ind = from_measures(&policy, 2026, Some(1), &m);
        assert_eq!(ind.sharing_rate.to_string(), "0.0600");
        let c = self_check_from(&policy, ind, 1);
        assert!(
            c.warnings
                .contains(&"外部共享机时占比 6%，低于 10%".to_string()),
            "{:?}",
            c.warnings
        );
        let sharing = c.items.iter().find(|i| i.key == "sharing").unwrap();
        // 10 × 0.06 / 0.10 + 10 × 1 + 10 × min(1, 0.5 / 0.5) = 26
        assert_eq!(sharing.score.to_string(), "26.00");
    }
}
