//! Indicator formulas as data (指标公式): the `indicators` section of the policy file names each
//! national indicator with an arithmetic expression over the measures the platform counts
//! (`external_hours / effective_hours`), how the live self-check scores the evaluation sheet
//! from them, and which values raise a warning. Expressions are evaluated in `Decimal`, never
//! in floating point; a division by zero gives 0 (a ratio of nothing).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The measures an expression may name (see `measures::Measures`), with what each counts.
pub const MEASURES: [(&str, &str); 20] = [
    ("instruments", "已审核入网仪器（台/套）"),
    ("instrument_value", "仪器原值（元）"),
    ("instruments_reportable", "原值 50 万元及以上的仪器"),
    ("instruments_reported", "其中已被国家平台接收的仪器"),
    ("instruments_normal", "运行状态为正常的仪器"),
    ("instruments_shared", "年内有服务记录的仪器"),
    ("instruments_shared_external", "年内有对外服务记录的仪器"),
    ("general_instruments", "通用仪器"),
    ("special_instruments", "专用仪器"),
    ("effective_hours", "有效服务机时"),
    ("external_hours", "对外服务机时"),
    ("internal_hours", "对内服务机时"),
    ("services", "服务次数"),
    ("external_services", "对外服务次数"),
    ("service_income", "服务收入（元）"),
    ("external_income", "对外服务收入（元）"),
    ("internal_income", "对内服务收入（元）"),
    ("voucher_income", "已兑付创新券金额（元）"),
    ("ratings", "用户评价数"),
    ("ratings_satisfied", "满意评价数"),
];

/// One named indicator: a title and its expression.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Formula {
    pub title: String,
    pub expr: String,
}

/// One scoring term of the self-check: `points × min(1, indicator ÷ full_at)`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScoreTerm {
    pub indicator: String,
    pub full_at: Decimal,
    pub points: Decimal,
}

/// A warning when an indicator is below a limit; `{value}` and `{limit}` are replaced by
/// percentages (`6%`, `10%`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WarningRule {
    pub indicator: String,
    pub below: Decimal,
    pub message: String,
}

/// The policy's `indicators` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndicatorRules {
    /// Rating labels that count as satisfied.
    pub satisfied_ratings: Vec<String>,
    /// Usage statuses that count as running normally.
    pub normal_statuses: Vec<String>,
    /// Indicator key → formula. The contract's keys (`normal_ratio`, `sharing_ratio`,
    /// `external_sharing_ratio`, `sharing_rate`, `satisfaction_rate`) must be present.
    pub formulas: BTreeMap<String, Formula>,
    /// Evaluation sheet item key → its scoring terms.
    pub self_check: BTreeMap<String, Vec<ScoreTerm>>,
    #[serde(default)]
    pub warnings: Vec<WarningRule>,
}

pub const REQUIRED_FORMULAS: [&str; 6] = [
    "reported_ratio",
    "normal_ratio",
    "sharing_ratio",
    "external_sharing_ratio",
    "sharing_rate",
    "satisfaction_rate",
];

impl Default for IndicatorRules {
    /// The `indicators` section of the shipped policy (`src/money/default_policy.yaml`), also
    /// used for a stored policy version written before the section existed.
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Wrap {
            indicators: IndicatorRules,
        }
        serde_saphyr::from_str::<Wrap>(crate::money::DEFAULT_POLICY)
            .expect("the default policy's indicators section is valid (a unit test checks it)")
            .indicators
    }
}

impl IndicatorRules {
    /// Problems in the rules, in Chinese, against the sheet's item keys and most points.
    pub fn check(&self, sheet: &[(String, u32)]) -> Vec<String> {
        let mut errors = Vec::new();
        for key in REQUIRED_FORMULAS {
            if !self.formulas.contains_key(key) {
                errors.push(format!("indicators.formulas 缺少 {key}"));
            }
        }
        for (key, f) in &self.formulas {
            match Expr::parse(&f.expr) {
                Err(e) => errors.push(format!("indicators.formulas.{key}：{e}")),
                Ok(expr) => {
                    for name in expr.names() {
                        if !MEASURES.iter().any(|(m, _)| *m == name) {
                            errors.push(format!("indicators.formulas.{key}：未知的量 {name}"));
                        }
                    }
                }
            }
        }
        for (item, terms) in &self.self_check {
            let Some((_, max)) = sheet.iter().find(|(k, _)| k == item) else {
                errors.push(format!("indicators.self_check.{item} 不是评分表中的项目"));
                continue;
            };
            let mut sum = Decimal::ZERO;
            for t in terms {
                if !self.formulas.contains_key(&t.indicator) {
                    errors.push(format!(
                        "indicators.self_check.{item}：未定义的指标 {}",
                        t.indicator
                    ));
                }
                if t.full_at <= Decimal::ZERO || t.points <= Decimal::ZERO {
                    errors.push(format!(
                        "indicators.self_check.{item}：full_at 与 points 必须大于 0"
                    ));
                }
                sum += t.points;
            }
            if sum > Decimal::from(*max) {
                errors.push(format!(
                    "indicators.self_check.{item} 各项分值之和 {sum} 超过该项满分 {max}"
                ));
            }
        }
        for w in &self.warnings {
            if !self.formulas.contains_key(&w.indicator) {
                errors.push(format!("indicators.warnings：未定义的指标 {}", w.indicator));
            }
        }
        errors
    }
}

/// A parsed arithmetic expression over named measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(Decimal),
    Name(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, String> {
        let tokens = tokenize(src)?;
        let mut p = Parser { t: &tokens, i: 0 };
        let e = p.sum()?;
        if p.i != tokens.len() {
            return Err(format!("表达式“{src}”在第 {} 个记号处无法解析", p.i + 1));
        }
        Ok(e)
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Expr::Num(_) => vec![],
            Expr::Name(n) => vec![n.clone()],
            Expr::Neg(e) => e.names(),
            Expr::Bin(_, a, b) => {
                let mut v = a.names();
                v.extend(b.names());
                v
            }
        }
    }

    /// The value with the measures given; an unknown name counts as 0, x / 0 as 0.
    pub fn eval(&self, vars: &BTreeMap<String, Decimal>) -> Decimal {
        match self {
            Expr::Num(d) => *d,
            Expr::Name(n) => vars.get(n).copied().unwrap_or(Decimal::ZERO),
            Expr::Neg(e) => -e.eval(vars),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars), b.eval(vars));
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a.checked_mul(b).unwrap_or(Decimal::MAX),
                    _ => a.checked_div(b).unwrap_or(Decimal::ZERO),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Decimal),
    Name(String),
    Op(char),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let s: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == '.')
                .collect();
            i += s.chars().count();
            out.push(Tok::Num(s.parse().map_err(|_| format!("“{s}”不是数字"))?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let s: String = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            i += s.chars().count();
            out.push(Tok::Name(s));
        } else {
            return Err(format!("表达式中不能有“{c}”"));
        }
    }
    if out.is_empty() {
        return Err("表达式为空".into());
    }
    Ok(out)
}

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
}

impl Parser<'_> {
    fn peek_op(&self) -> Option<char> {
        match self.t.get(self.i) {
            Some(Tok::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut e = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek_op() {
            self.i += 1;
            e = Expr::Bin(op, Box::new(e), Box::new(self.product()?));
        }
        Ok(e)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        while let Some(op @ ('*' | '/')) = self.peek_op() {
            self.i += 1;
            e = Expr::Bin(op, Box::new(e), Box::new(self.atom()?));
        }
        Ok(e)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let tok = self.t.get(self.i).cloned();
        self.i += 1;
        match tok {
            Some(Tok::Num(d)) => Ok(Expr::Num(d)),
            Some(Tok::Name(n)) => Ok(Expr::Name(n)),
            Some(Tok::Op('-')) => Ok(Expr::Neg(Box::new(self.atom()?))),
            Some(Tok::Op('(')) => {
                let e = self.sum()?;
                if self.peek_op() != Some(')') {
                    return Err("缺少右括号".into());
                }
                self.i += 1;
                Ok(e)
            }
            _ => Err("表达式不完整".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, i64)]) -> BTreeMap<String, Decimal> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Decimal::from(*v)))
            .collect()
    }

    #[test]
    fn an_expression_follows_precedence_and_parentheses_in_decimal() {
        let e =
            Expr::parse("(internal_income + 1.5 * external_income) / instrument_value").unwrap();
        let v = vars(&[
            ("internal_income", 100),
            ("external_income", 200),
            ("instrument_value", 1000),
        ]);
        assert_eq!(e.eval(&v), Decimal::new(4, 1));
        assert_eq!(
            Expr::parse("1 - -2 * 3").unwrap().eval(&v),
            Decimal::from(7)
        );
    }

    #[test]
    fn a_ratio_of_nothing_is_zero() {
        let e = Expr::parse("external_hours / effective_hours").unwrap();
        assert_eq!(e.eval(&BTreeMap::new()), Decimal::ZERO);
    }

    #[test]
    fn bad_expressions_are_refused_in_chinese() {
        assert!(Expr::parse("a +").unwrap_err().contains("不完整"));
        assert!(Expr::parse("(a").unwrap_err().contains("括号"));
        assert!(Expr::parse("a % b").unwrap_err().contains("%"));
        assert!(Expr::parse("a b").is_err());
    }

    #[test]
    fn the_default_rules_load_and_check_against_the_default_sheet() {
        let rules = IndicatorRules::default();
        let sheet: Vec<(String, u32)> = [
            ("usage", 25),
            ("sharing", 30),
            ("results", 25),
            ("satisfaction", 10),
            ("management", 10),
        ]
        .iter()
        .map(|(k, m)| (k.to_string(), *m))
        .collect();
        assert_eq!(rules.check(&sheet), Vec::<String>::new());
        let mut bad = rules.clone();
        bad.formulas.get_mut("sharing_rate").unwrap().expr = "external_hours / nothing".into();
        assert!(
            bad.check(&sheet)
                .iter()
                .any(|e| e.contains("未知的量 nothing"))
        );
    }
}
