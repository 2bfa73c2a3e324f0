//! What a unit manager submits for an instrument (登记表单): the input as received, its
//! lenient parsing and its validation into a [`ValidInstrument`] with Chinese field messages.

use serde::{Deserialize, Serialize};

use super::{EditExtras, Instrument};
use crate::{
    catalog,
    error::{AppError, Result},
};

/// What `POST /api/v1/instruments`, `PATCH` and the console form accept. Text fields stay
/// strings so a bad value comes back as a Chinese field error with the input kept.
#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct InstrumentInput {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub unit_id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub manufacturer: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub category_code: String,
    #[serde(default)]
    pub department: String,
    /// Yuan, e.g. `"1250000.00"` (a JSON number is accepted too).
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: String,
    #[serde(default, deserialize_with = "crate::units::lenient_bool")]
    pub open_to_public: bool,
    #[serde(default)]
    pub city: String,
    #[serde(default, deserialize_with = "crate::units::lenient_bool")]
    pub customs_supervised: bool,
    #[serde(default)]
    pub customs_declaration_no: String,
    #[serde(default)]
    pub customs_release_date: String,
    #[serde(default)]
    pub usage_status: String,
    #[serde(default)]
    pub sharing_mode: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub funding: String,
    #[serde(default)]
    pub instrument_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub service_content: String,
    #[serde(default)]
    pub typical_achievements: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub fee_standard: String,
    #[serde(default)]
    pub purchase_date: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub slot_minutes: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub min_lead_hours: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub max_days_ahead: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub max_duration_hours: String,
    /// 年运行机时 (the contract's `annual_run_hours`).
    #[serde(
        default,
        alias = "annual_run_hours",
        deserialize_with = "lenient_string"
    )]
    pub annual_running_hours: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub annual_service_hours: String,
    // National reporting fields (国家上报字段): optional on the platform, format-checked here,
    // completeness checked when reporting; stored in `national_json`.
    /// 英文名称.
    #[serde(default)]
    pub name_en: String,
    /// 主要技术指标 (≤ 500 characters).
    #[serde(default)]
    pub technical: String,
    /// 主要功能 (≤ 300 characters).
    #[serde(default)]
    pub functions: String,
    /// 服务对象要求.
    #[serde(default)]
    pub requirements: String,
    /// GB/T 13745 subject codes, at most 4: a list, or a string split at commas.
    #[serde(default, deserialize_with = "lenient_list")]
    pub subject_codes: String,
    /// 启用日期 `YYYY-MM-DD`.
    #[serde(default)]
    pub begin_date: String,
    /// 所属类型 (科学仪器中心, 国家重点实验室, … or 无).
    #[serde(default)]
    pub affiliation: String,
    #[serde(default)]
    pub county: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_phone: String,
    #[serde(default)]
    pub contact_email: String,
}

/// A list of strings (joined with commas) or one string.
fn lenient_list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        L(Vec<serde_json::Value>),
        S(String),
        N(serde_json::Number),
    }
    Ok(match Option::<V>::deserialize(d)? {
        Some(V::L(items)) => items
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(V::S(s)) => s,
        Some(V::N(n)) => n.to_string(),
        None => String::new(),
    })
}

/// A string, or a JSON number written as its text.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Option::<V>::deserialize(d)? {
        Some(V::S(s)) => s,
        Some(V::N(n)) => n.to_string(),
        None => String::new(),
    })
}

/// An id from JSON (number or string) or a form field; blank is `None`.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    let s = lenient_string(d)?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom("unit_id 应为整数"))
}

/// A record validated and ready to store.
#[derive(Debug, Clone)]
pub struct ValidInstrument {
    pub unit_id: i64,
    pub value_fen: i64,
    pub customs_release_date: Option<String>,
    pub purchase_date: Option<String>,
    pub booking: [i64; 6],
    pub input: InstrumentInput,
}

fn valid_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn pick(field: &mut String, allowed: &[&str], default: &str) -> bool {
    let v = field.trim().to_string();
    if v.is_empty() {
        *field = default.to_string();
        return true;
    }
    *field = v;
    allowed.contains(&field.as_str())
}

impl InstrumentInput {
    /// Trim, apply defaults and check every field; errors are Chinese, per field.
    pub fn validate(mut self) -> Result<ValidInstrument> {
        let mut e = crate::error::FieldErrors::new();
        for s in [
            &mut self.name,
            &mut self.model,
            &mut self.manufacturer,
            &mut self.country,
            &mut self.category_code,
            &mut self.department,
            &mut self.city,
            &mut self.customs_declaration_no,
            &mut self.customs_release_date,
            &mut self.description,
            &mut self.service_content,
            &mut self.typical_achievements,
            &mut self.location,
            &mut self.fee_standard,
            &mut self.purchase_date,
        ] {
            *s = s.trim().to_string();
        }
        let unit_id = match self.unit_id {
            Some(id) if id > 0 => id,
            _ => {
                e.insert("unit_id".into(), "请选择所属单位".into());
                0
            }
        };
        let n = self.name.chars().count();
        if !(2..=100).contains(&n) {
            e.insert("name".into(), "请填写仪器名称（2–100 字）".into());
        }
        // One-line fields reach feeds, exports and mail headers: no line breaks, tabs or other
        // control characters.
        for (field, value, label) in [
            ("name", &self.name, "仪器名称"),
            ("model", &self.model, "规格型号"),
            ("manufacturer", &self.manufacturer, "生产厂商"),
            ("location", &self.location, "安放地点"),
        ] {
            if value.chars().any(char::is_control) && !e.contains_key(field) {
                e.insert(
                    field.into(),
                    format!("{label}不能包含换行、制表符等控制字符"),
                );
            }
        }
        if self.model.chars().count() > 100 {
            e.insert("model".into(), "规格型号不超过 100 字".into());
        }
        if self.category_code.len() != 6 || !catalog::is_known_code(&self.category_code) {
            e.insert(
                "category_code".into(),
                "请选择仪器分类（六位分类代码）".into(),
            );
        }
        let value_fen = match crate::domain::Yuan::parse(&self.value) {
            Ok(y) if y.fen() > 0 => {
                self.value = y.to_string();
                y.fen()
            }
            Ok(_) => {
                e.insert("value".into(), "仪器原值应大于 0 元".into());
                0
            }
            Err(msg) => {
                e.insert("value".into(), format!("仪器原值（元）：{msg}"));
                0
            }
        };
        if self.city.is_empty() {
            self.city = "许昌市".into();
        }
        if !pick(&mut self.usage_status, &catalog::USAGE_STATUSES, "正常") {
            e.insert("usage_status".into(), "运行状态不在可选范围内".into());
        }
        if !pick(&mut self.sharing_mode, &catalog::SHARING_MODES, "外部共享") {
            e.insert("sharing_mode".into(), "共享方式不在可选范围内".into());
        }
        if !pick(&mut self.source, &catalog::SOURCES, "购置") {
            e.insert("source".into(), "仪器来源不在可选范围内".into());
        }
        if !pick(&mut self.funding, &catalog::FUNDING, "单位自有") {
            e.insert("funding".into(), "资金来源不在可选范围内".into());
        }
        if !pick(&mut self.instrument_type, &catalog::TYPES, "通用") {
            e.insert("instrument_type".into(), "仪器类型不在可选范围内".into());
        }
        let customs_release_date = if self.customs_supervised {
            if self.customs_declaration_no.is_empty() {
                e.insert(
                    "customs_declaration_no".into(),
                    "海关监管仪器须填写进口报关单编号".into(),
                );
            }
            if !valid_date(&self.customs_release_date) {
                e.insert(
                    "customs_release_date".into(),
                    "海关监管仪器须填写放行日期（YYYY-MM-DD）".into(),
                );
            }
            Some(self.customs_release_date.clone())
        } else {
            self.customs_declaration_no.clear();
            self.customs_release_date.clear();
            None
        };
        let purchase_date = if self.purchase_date.is_empty() {
            None
        } else if valid_date(&self.purchase_date) {
            Some(self.purchase_date.clone())
        } else {
            e.insert("purchase_date".into(), "购置日期格式应为 YYYY-MM-DD".into());
            None
        };
        // Booking rules and yearly hours: (field, default, min, max, message).
        let specs: [(&str, i64, i64, i64, &str); 6] = [
            ("slot_minutes", 30, 5, 1440, "预约时段长度应为 5–1440 分钟"),
            ("min_lead_hours", 1, 0, 720, "提前预约时间应为 0–720 小时"),
            ("max_days_ahead", 90, 1, 365, "最远可预约天数应为 1–365 天"),
            (
                "max_duration_hours",
                10,
                1,
                720,
                "单次最长使用时间应为 1–720 小时",
            ),
            (
                "annual_running_hours",
                0,
                0,
                8784,
                "年运行机时应为 0–8784 小时",
            ),
            (
                "annual_service_hours",
                0,
                0,
                8784,
                "年服务机时应为 0–8784 小时",
            ),
        ];
        let mut booking = [0i64; 6];
        for (i, (field, default, min, max, msg)) in specs.iter().enumerate() {
            let raw = match *field {
                "slot_minutes" => &mut self.slot_minutes,
                "min_lead_hours" => &mut self.min_lead_hours,
                "max_days_ahead" => &mut self.max_days_ahead,
                "max_duration_hours" => &mut self.max_duration_hours,
                "annual_running_hours" => &mut self.annual_running_hours,
                _ => &mut self.annual_service_hours,
            };
            let t = raw.trim().to_string();
            booking[i] = if t.is_empty() {
                *raw = default.to_string();
                *default
            } else {
                match t.parse::<i64>() {
                    Ok(v) if (*min..=*max).contains(&v) => {
                        *raw = t;
                        v
                    }
                    _ => {
                        e.insert((*field).into(), (*msg).into());
                        *default
                    }
                }
            };
        }
        self.check_national(&mut e);
        if let Some(err) = AppError::fields(e) {
            return Err(err);
        }
        Ok(ValidInstrument {
            unit_id,
            value_fen,
            customs_release_date,
            purchase_date,
            booking,
            input: self,
        })
    }

    /// The national fields: trimmed, formats checked (a date, a postal code, …) and the
    /// national length limits; leaving them empty is allowed (checked when reporting).
    fn check_national(&mut self, e: &mut crate::error::FieldErrors) {
        for s in [
            &mut self.name_en,
            &mut self.technical,
            &mut self.functions,
            &mut self.requirements,
            &mut self.subject_codes,
            &mut self.begin_date,
            &mut self.affiliation,
            &mut self.county,
            &mut self.address,
            &mut self.postal_code,
            &mut self.contact_name,
            &mut self.contact_phone,
            &mut self.contact_email,
        ] {
            *s = s.trim().to_string();
        }
        let limits = [
            ("name_en", &self.name_en, 200, "英文名称"),
            ("technical", &self.technical, 500, "主要技术指标"),
            ("functions", &self.functions, 300, "主要功能"),
            ("requirements", &self.requirements, 500, "服务对象要求"),
            ("affiliation", &self.affiliation, 100, "所属类型"),
            ("county", &self.county, 50, "区县"),
            ("address", &self.address, 200, "详细地址"),
            ("contact_name", &self.contact_name, 50, "联系人"),
        ];
        for (field, value, max, label) in limits {
            let n = value.chars().count();
            if n > max {
                e.insert(
                    field.into(),
                    format!("{label}不超过 {max} 字（国家上报要求，现 {n} 字）"),
                );
            }
        }
        let codes: Vec<&str> = self
            .subject_codes
            .split([',', '，', ' ', '、'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if codes.len() > 4 {
            e.insert(
                "subject_codes".into(),
                format!("主要学科领域最多 4 个（现 {} 个）", codes.len()),
            );
        } else if let Some(bad) = codes
            .iter()
            .find(|c| c.len() > 7 || !c.bytes().all(|b| b.is_ascii_digit()))
        {
            e.insert(
                "subject_codes".into(),
                format!("学科代码“{bad}”应为 GB/T 13745 数字代码，如 110、520"),
            );
        }
        self.subject_codes = codes.join(",");
        if !self.begin_date.is_empty() && !valid_date(&self.begin_date) {
            e.insert("begin_date".into(), "启用日期格式应为 YYYY-MM-DD".into());
        }
        if !self.postal_code.is_empty()
            && (self.postal_code.len() != 6
                || !self.postal_code.bytes().all(|b| b.is_ascii_digit()))
        {
            e.insert("postal_code".into(), "邮政编码应为 6 位数字".into());
        }
        if !self.contact_phone.is_empty()
            && (self.contact_phone.len() > 30
                || !self
                    .contact_phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || "-+ ()".contains(c)))
        {
            e.insert(
                "contact_phone".into(),
                "联系电话只能包含数字、“-”“+”和括号（30 位以内）".into(),
            );
        }
        if !self.contact_email.is_empty() {
            let ok = self.contact_email.len() <= 100
                && !self.contact_email.contains(char::is_whitespace)
                && self
                    .contact_email
                    .split_once('@')
                    .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.'));
            if !ok {
                e.insert("contact_email".into(), "电子邮箱格式不正确".into());
            }
        }
        for (field, value, label) in [
            ("name_en", &self.name_en, "英文名称"),
            ("contact_name", &self.contact_name, "联系人"),
        ] {
            if value.chars().any(char::is_control) && !e.contains_key(field) {
                e.insert(
                    field.into(),
                    format!("{label}不能包含换行、制表符等控制字符"),
                );
            }
        }
    }

    /// The national fields as stored (`national_json`): `subject_codes` a list.
    pub fn national_json(&self) -> String {
        let codes: Vec<&str> = self
            .subject_codes
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        serde_json::json!({
            "name_en": self.name_en, "technical": self.technical, "functions": self.functions,
            "requirements": self.requirements, "subject_codes": codes,
            "begin_date": self.begin_date, "affiliation": self.affiliation,
            "county": self.county, "address": self.address, "postal_code": self.postal_code,
            "contact_name": self.contact_name, "contact_phone": self.contact_phone,
            "contact_email": self.contact_email,
        })
        .to_string()
    }

    /// The stored record as form input (for edit forms and PATCH merges).
    pub fn from_record(i: &Instrument, extra: &EditExtras) -> InstrumentInput {
        InstrumentInput {
            unit_id: Some(i.unit_id),
            name: i.name.clone(),
            model: i.model.clone(),
            manufacturer: i.manufacturer.clone(),
            country: i.country.clone(),
            category_code: i.category_code.clone(),
            department: i.department.clone(),
            value: crate::domain::Yuan::from_fen(i.value_fen).to_string(),
            open_to_public: i.open_to_public,
            city: i.city.clone(),
            customs_supervised: i.customs_supervised,
            customs_declaration_no: extra.customs_declaration_no.clone(),
            customs_release_date: extra.customs_release_date.clone().unwrap_or_default(),
            usage_status: i.usage_status.clone(),
            sharing_mode: i.sharing_mode.clone(),
            source: i.source.clone(),
            funding: i.funding.clone(),
            instrument_type: i.instrument_type.clone(),
            description: i.description.clone(),
            service_content: i.service_content.clone(),
            typical_achievements: i.typical_achievements.clone(),
            location: i.location.clone(),
            fee_standard: i.fee_standard.clone(),
            purchase_date: i.purchase_date.clone().unwrap_or_default(),
            slot_minutes: extra.booking[0].to_string(),
            min_lead_hours: extra.booking[1].to_string(),
            max_days_ahead: extra.booking[2].to_string(),
            max_duration_hours: extra.booking[3].to_string(),
            annual_running_hours: i.annual_running_hours.to_string(),
            annual_service_hours: i.annual_service_hours.to_string(),
            name_en: extra.national_text("name_en"),
            technical: extra.national_text("technical"),
            functions: extra.national_text("functions"),
            requirements: extra.national_text("requirements"),
            subject_codes: extra.national_text("subject_codes"),
            begin_date: extra.national_text("begin_date"),
            affiliation: extra.national_text("affiliation"),
            county: extra.national_text("county"),
            address: extra.national_text("address"),
            postal_code: extra.national_text("postal_code"),
            contact_name: extra.national_text("contact_name"),
            contact_phone: extra.national_text("contact_phone"),
            contact_email: extra.national_text("contact_email"),
        }
    }
}
