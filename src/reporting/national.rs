//! The national schema (国家上报字段) as data: `national.yaml` says, per record type, which
//! national field comes from which source value, how it is converted and what makes a problem.
//! [`map`] turns one source record into its national JSON and its Chinese problem list.

use std::{collections::BTreeMap, sync::OnceLock};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The mapping file, compiled in (a unit test checks it loads).
#[derive(Debug, Deserialize)]
pub struct Schema {
    pub schema_version: String,
    pub reportable_min_yuan: String,
    pub code_lists: BTreeMap<String, Vec<String>>,
    pub records: BTreeMap<String, Vec<FieldSpec>>,
}

/// One national field of a record type.
#[derive(Debug, Deserialize)]
pub struct FieldSpec {
    pub field: String,
    pub label: String,
    pub from: String,
    #[serde(default)]
    pub convert: Option<String>,
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub positive: bool,
    #[serde(default)]
    pub max_chars: Option<usize>,
    #[serde(default)]
    pub digits: Option<usize>,
    #[serde(default)]
    pub max_items: Option<usize>,
    #[serde(default)]
    pub date: bool,
    #[serde(default)]
    pub one_of: Option<String>,
    #[serde(default)]
    pub class_code: bool,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// A problem of one record: the national field and a Chinese message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_saphyr::from_str(include_str!("national.yaml"))
            .expect("national.yaml is valid (checked by a unit test)")
    })
}

/// The national threshold in fen (50 万元).
pub fn reportable_min_fen() -> i64 {
    crate::domain::Yuan::parse(&schema().reportable_min_yuan)
        .map(|y| y.fen())
        .unwrap_or(50_000_000)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        Value::String(s) => !s.is_empty() && s != "0" && s != "false",
        _ => false,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
    }
}

fn convert(spec: &FieldSpec, v: &Value) -> String {
    match spec.convert.as_deref() {
        Some("fen_to_wan") => match v.as_i64() {
            // 1 万元 = 1,000,000 fen; half-up to two places.
            Some(fen) => Decimal::new(fen, 6)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .to_string(),
            None => String::new(),
        },
        Some("fen_to_yuan") => v
            .as_i64()
            .map(|f| crate::domain::Yuan::from_fen(f).to_string())
            .unwrap_or_default(),
        Some("yes_no") => if truthy(v) { "是" } else { "否" }.to_string(),
        Some("hour") => match v.as_i64() {
            Some(ts) if ts > 0 => chrono::DateTime::from_timestamp(ts, 0)
                .map(|t| {
                    t.with_timezone(&chrono_tz::Asia::Shanghai)
                        .format("%Y-%m-%d %H")
                        .to_string()
                })
                .unwrap_or_default(),
            _ => String::new(),
        },
        Some("hours_x100") => match v.as_i64() {
            Some(h) if h > 0 => Decimal::new(h, 2).normalize().to_string(),
            _ => String::new(),
        },
        Some("map") => {
            let t = text(v);
            spec.map.get(&t).cloned().unwrap_or(t)
        }
        _ => text(v),
    }
}

/// Map one source record of `kind` (`instruments` | `service_records`) to its national
/// fields, in the file's order, and list what the national rules find wrong with it.
pub fn map(kind: &str, source: &Map<String, Value>) -> (Map<String, Value>, Vec<Problem>) {
    let schema = schema();
    let mut out = Map::new();
    let mut problems = Vec::new();
    let Some(specs) = schema.records.get(kind) else {
        return (out, problems);
    };
    for spec in specs {
        if let Some(cond) = &spec.when
            && !source.get(cond).is_some_and(truthy)
        {
            continue;
        }
        let raw = source.get(&spec.from).cloned().unwrap_or(Value::Null);
        let mut value = convert(spec, &raw);
        if value.is_empty()
            && let Some(d) = &spec.default
        {
            value = d.clone();
        }
        let problem = check(spec, &raw, &value, schema);
        if let Some(message) = problem {
            problems.push(Problem {
                field: spec.field.clone(),
                message: spec.message.clone().unwrap_or(message),
            });
        }
        out.insert(spec.field.clone(), Value::String(value));
    }
    (out, problems)
}

fn check(spec: &FieldSpec, raw: &Value, value: &str, schema: &Schema) -> Option<String> {
    let label = &spec.label;
    if value.is_empty() {
        return (spec.required || spec.positive || spec.digits.is_some())
            .then(|| format!("缺少{label}"));
    }
    if spec.positive
        && value
            .parse::<Decimal>()
            .map_or(true, |d| d <= Decimal::ZERO)
    {
        return Some(format!("{label}应大于 0"));
    }
    if let Some(n) = spec.max_chars {
        let m = value.chars().count();
        if m > n {
            return Some(format!("{label}不超过 {n} 字（现 {m} 字）"));
        }
    }
    if let Some(n) = spec.digits
        && (value.len() != n || !value.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!("{label}应为 {n} 位数字"));
    }
    if let Some(n) = spec.max_items {
        let items = match raw {
            Value::Array(a) => a.len(),
            _ => value.split(',').filter(|s| !s.trim().is_empty()).count(),
        };
        if items > n {
            return Some(format!("{label}最多 {n} 个（现 {items} 个）"));
        }
    }
    if spec.date && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
        return Some(format!("{label}应为 YYYY-MM-DD 格式的日期"));
    }
    if spec.class_code && !(value.len() == 6 && crate::catalog::is_known_code(value)) {
        return Some(format!("{label}“{value}”不是国家仪器分类代码"));
    }
    if let Some(list) = &spec.one_of
        && !schema
            .code_lists
            .get(list)
            .is_some_and(|l| l.iter().any(|c| c == value))
    {
        return Some(format!("{label}“{value}”不在国家代码表内"));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn instrument() -> Map<String, Value> {
        json!({
            "id": 7, "name": "场发射扫描电子显微镜", "name_en": "Field emission SEM",
            "category_code": "990000", "source": "购置", "instrument_type": "通用",
            "value_fen": 186_000_000i64, "technical": "分辨率 1 nm", "functions": "形貌观察",
            "funding": "地方财政", "usage_status": "正常", "sharing_mode": "外部共享",
            "customs_supervised": false,
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn the_mapping_file_loads_with_both_record_types() {
        let s = schema();
        assert!(s.records.contains_key("instruments"));
        assert!(s.records.contains_key("service_records"));
        assert_eq!(reportable_min_fen(), 50_000_000);
    }

    #[test]
    fn a_complete_instrument_maps_to_national_names_with_the_value_in_wan_yuan() {
        let (n, problems) = map("instruments", &instrument());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(n["cname"], "场发射扫描电子显微镜");
        assert_eq!(n["worth"], "186.00");
        assert_eq!(n["instrSupervise"], "否");
        assert_eq!(n["instrBelongsType"], "无");
        assert!(!n.contains_key("declarationNumber"));
    }

    #[test]
    fn overlong_indicators_and_an_unknown_class_are_problems_with_chinese_messages() {
        let mut i = instrument();
        i.insert("technical".into(), json!("指".repeat(501)));
        i.insert("functions".into(), json!("能".repeat(301)));
        i.insert("category_code".into(), json!("123456"));
        i.remove("name_en");
        let (_, problems) = map("instruments", &i);
        let by: BTreeMap<_, _> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(by["ename"], "缺少英文名称");
        assert_eq!(by["technical"], "主要技术指标不超过 500 字（现 501 字）");
        assert_eq!(by["function"], "主要功能不超过 300 字（现 301 字）");
        assert_eq!(
            by["instrCategory"],
            "仪器分类代码“123456”不是国家仪器分类代码"
        );
    }

    #[test]
    fn a_customs_supervised_instrument_needs_an_eighteen_digit_declaration_number() {
        let mut i = instrument();
        i.insert("customs_supervised".into(), json!(true));
        i.insert("customs_declaration_no".into(), json!("4600-2021"));
        let (_, problems) = map("instruments", &i);
        assert!(problems.contains(&Problem {
            field: "declarationNumber".into(),
            message: "海关监管仪器须填写 18 位进口报关单号".into()
        }));
    }
}
