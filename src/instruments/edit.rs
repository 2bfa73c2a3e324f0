//! Editing and submission (登记与提交) of instruments by unit managers: input validation,
//! create/update, completeness and the onboarding submission, and the console list.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Instrument, get};
use crate::{
    catalog,
    error::{AppError, Result},
    store::Db,
};

// ---- editing and submission (unit managers) ----------------------------------------------

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

/// Columns the portal record does not carry: customs details and booking rules.
#[derive(Debug, Clone, Serialize)]
pub struct EditExtras {
    pub customs_declaration_no: String,
    pub customs_release_date: Option<String>,
    /// slot_minutes, min_lead_hours, max_days_ahead, max_duration_hours.
    pub booking: [i64; 4],
    /// The national reporting fields (`national_json`).
    pub national: serde_json::Map<String, serde_json::Value>,
}

impl EditExtras {
    /// One national field as text (a list joined with commas).
    pub fn national_text(&self, key: &str) -> String {
        match self.national.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
}

pub async fn extras(db: &Db, id: i64) -> Result<EditExtras> {
    let r = sqlx::query(
        "SELECT customs_declaration_no, customs_release_date, slot_minutes, min_lead_hours, \
         max_days_ahead, max_duration_hours, national_json FROM instruments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(EditExtras {
        customs_declaration_no: r.get("customs_declaration_no"),
        customs_release_date: r.get("customs_release_date"),
        booking: [
            r.get("slot_minutes"),
            r.get("min_lead_hours"),
            r.get("max_days_ahead"),
            r.get("max_duration_hours"),
        ],
        national: serde_json::from_str(&r.get::<String, _>("national_json")).unwrap_or_default(),
    })
}

/// Review states as the console shows them.
pub fn review_label(status: &str) -> &'static str {
    match status {
        "draft" => "草稿",
        "pending" => "审核中",
        "approved" => "已入网",
        "rejected" => "已退回",
        "retired" => "已下线",
        _ => "未知",
    }
}

/// Only drafts and returned records may be edited. A pending record is under review; an
/// approved one is public and bookable, so changing it in place would bypass the review —
/// it stays as approved until a change goes through the onboarding flow again.
pub fn ensure_editable(review_status: &str) -> Result<()> {
    match review_status {
        "draft" | "rejected" => Ok(()),
        "pending" => Err(AppError::conflict(
            "not_editable",
            "该仪器正在审核中，审核结束前不能修改",
        )),
        "retired" => Err(AppError::conflict(
            "instrument_retired",
            "该仪器已下线，不能修改",
        )),
        _ => Err(AppError::conflict(
            "not_editable",
            "该仪器已审核入网，请提交变更申请，审核通过后生效",
        )),
    }
}

/// Create an instrument in `draft` for a unit the caller manages (checked by the caller).
pub async fn create<'e, E>(ex: E, v: &ValidInstrument, now: i64) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let i = &v.input;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instruments (unit_id, name, model, manufacturer, country, category_code, \
         department, value_fen, open_to_public, city, customs_supervised, customs_declaration_no, \
         customs_release_date, usage_status, sharing_mode, source, funding, instrument_type, \
         description, service_content, typical_achievements, location, fee_standard, \
         data_source, review_status, purchase_date, slot_minutes, min_lead_hours, max_days_ahead, \
         max_duration_hours, annual_running_hours, annual_service_hours, created_at, updated_at, \
         national_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, '单位填报', 'draft', $24, $25, $26, $27, $28, $29, $30, $31, $31, \
         $32) RETURNING id",
    )
    .bind(v.unit_id)
    .bind(&i.name)
    .bind(&i.model)
    .bind(&i.manufacturer)
    .bind(&i.country)
    .bind(&i.category_code)
    .bind(&i.department)
    .bind(v.value_fen)
    .bind(i.open_to_public as i64)
    .bind(&i.city)
    .bind(i.customs_supervised as i64)
    .bind(&i.customs_declaration_no)
    .bind(v.customs_release_date.clone())
    .bind(&i.usage_status)
    .bind(&i.sharing_mode)
    .bind(&i.source)
    .bind(&i.funding)
    .bind(&i.instrument_type)
    .bind(&i.description)
    .bind(&i.service_content)
    .bind(&i.typical_achievements)
    .bind(&i.location)
    .bind(&i.fee_standard)
    .bind(v.purchase_date.clone())
    .bind(v.booking[0])
    .bind(v.booking[1])
    .bind(v.booking[2])
    .bind(v.booking[3])
    .bind(v.booking[4])
    .bind(v.booking[5])
    .bind(now)
    .bind(i.national_json())
    .fetch_one(ex)
    .await?;
    Ok(id)
}

/// Overwrite an editable record; the unit never changes. Refused unless draft or rejected
/// (checked again inside the UPDATE so a concurrent submit cannot be overwritten).
pub async fn update(db: &Db, id: i64, v: &ValidInstrument, now: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    let n = write_fields(&mut tx, id, v, now, "('draft', 'rejected')").await?;
    tx.commit().await?;
    if n == 0 {
        let current = get(db, id).await?;
        ensure_editable(&current.review_status)?;
    }
    Ok(())
}

/// Write an approved change request's values over an approved record (变更审核通过), inside
/// the deciding transaction; 0 when the record is no longer approved.
pub async fn apply_approved(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    v: &ValidInstrument,
    now: i64,
) -> Result<u64> {
    write_fields(conn, id, v, now, "('approved')").await
}

/// The one UPDATE of an instrument's reviewed fields, for records in `statuses` (a constant
/// SQL list); returns the rows changed.
async fn write_fields(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    v: &ValidInstrument,
    now: i64,
    statuses: &'static str,
) -> Result<u64> {
    let i = &v.input;
    let sql = format!(
        "UPDATE instruments SET name = $1, model = $2, manufacturer = $3, country = $4, \
         category_code = $5, department = $6, value_fen = $7, open_to_public = $8, city = $9, \
         customs_supervised = $10, customs_declaration_no = $11, customs_release_date = $12, \
         usage_status = $13, sharing_mode = $14, source = $15, funding = $16, \
         instrument_type = $17, description = $18, service_content = $19, \
         typical_achievements = $20, location = $21, fee_standard = $22, purchase_date = $23, \
         slot_minutes = $24, min_lead_hours = $25, max_days_ahead = $26, \
         max_duration_hours = $27, annual_running_hours = $28, annual_service_hours = $29, \
         updated_at = $30, national_json = $32 WHERE id = $31 AND review_status IN {statuses}"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&i.name)
        .bind(&i.model)
        .bind(&i.manufacturer)
        .bind(&i.country)
        .bind(&i.category_code)
        .bind(&i.department)
        .bind(v.value_fen)
        .bind(i.open_to_public as i64)
        .bind(&i.city)
        .bind(i.customs_supervised as i64)
        .bind(&i.customs_declaration_no)
        .bind(v.customs_release_date.clone())
        .bind(&i.usage_status)
        .bind(&i.sharing_mode)
        .bind(&i.source)
        .bind(&i.funding)
        .bind(&i.instrument_type)
        .bind(&i.description)
        .bind(&i.service_content)
        .bind(&i.typical_achievements)
        .bind(&i.location)
        .bind(&i.fee_standard)
        .bind(v.purchase_date.clone())
        .bind(v.booking[0])
        .bind(v.booking[1])
        .bind(v.booking[2])
        .bind(v.booking[3])
        .bind(v.booking[4])
        .bind(v.booking[5])
        .bind(now)
        .bind(id)
        .bind(i.national_json())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// What a submission returns: the workflow instance (none until the engine is wired) and
/// the record's review state.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub instance_id: Option<i64>,
    pub state: String,
}

/// Fields a record must have before it can be reviewed, beyond what a draft needs.
fn completeness(i: &Instrument) -> crate::error::FieldErrors {
    let mut e = crate::error::FieldErrors::new();
    let required = [
        ("model", &i.model, "请填写规格型号"),
        ("manufacturer", &i.manufacturer, "请填写生产厂商"),
        ("location", &i.location, "请填写安放地点"),
        ("description", &i.description, "请填写主要技术指标与功能"),
        ("service_content", &i.service_content, "请填写服务内容"),
        ("fee_standard", &i.fee_standard, "请填写收费标准"),
    ];
    for (field, value, msg) in required {
        if value.trim().is_empty() {
            e.insert(field.into(), msg.into());
        }
    }
    e
}

/// Submit an instrument for onboarding review (仪器入网审核): the record must be complete
/// and in draft or rejected; it becomes `pending`. The caller has checked the unit scope.
pub async fn submit(
    engine: &crate::workflow::Engine,
    user: &crate::auth::CurrentUser,
    id: i64,
) -> Result<Submission> {
    let db = engine.db();
    let record = get(db, id).await?;
    ensure_editable(&record.review_status)?;
    if let Some(mut err) = AppError::fields(completeness(&record)) {
        if let AppError::Validation { message, .. } = &mut err {
            *message = "仪器信息不完整，请补充后再提交审核".into();
        }
        return Err(err);
    }
    // The flow's first state sets the record `pending` in the same transaction; a second
    // submission while one is running is refused by the engine (409 already_running).
    let data = serde_json::json!({"name": record.name, "unit_id": record.unit_id, "submitted_by": user.id});
    let started = engine
        .start("instrument_onboarding", "instrument", id, user.id, data)
        .await?;
    Ok(Submission {
        instance_id: Some(started.instance_id),
        state: started.state,
    })
}

/// One row of the console list.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleRow {
    pub id: i64,
    pub unit_name: String,
    pub name: String,
    pub model: String,
    pub category_label: String,
    pub value_fen: i64,
    pub usage_status: String,
    pub review_status: String,
    pub review_label: &'static str,
    pub updated_at: i64,
}

/// Instruments of the given units (the caller's), optionally one review status; newest
/// change first. Returns (page, total).
pub async fn list_for_units(
    db: &Db,
    unit_ids: &[i64],
    status: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsoleRow>, i64)> {
    if unit_ids.is_empty() {
        return Ok((vec![], 0));
    }
    // Unit ids are integers from the session, so they can be inlined safely.
    let ids = unit_ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut wh = format!("i.unit_id IN ({ids})");
    let status = status.trim();
    let has_status = ["draft", "pending", "approved", "rejected"].contains(&status);
    if has_status {
        wh.push_str(" AND i.review_status = $1");
    }
    let base = format!("FROM instruments i JOIN units u ON u.id = i.unit_id WHERE {wh}");
    let mut count =
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {base}")));
    if has_status {
        count = count.bind(status.to_string());
    }
    let total = count.fetch_one(&db.pool).await?;
    let (l, o) = if has_status { (2, 3) } else { (1, 2) };
    let sql = format!(
        "SELECT i.id, u.name AS unit_name, i.name, i.model, i.category_code, i.value_fen, \
         i.usage_status, i.review_status, i.updated_at {base} \
         ORDER BY i.updated_at DESC, i.id DESC LIMIT ${l} OFFSET ${o}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if has_status {
        q = q.bind(status.to_string());
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&db.pool).await?;
    Ok((
        rows.iter()
            .map(|r| {
                let code: String = r.get("category_code");
                let st: String = r.get("review_status");
                ConsoleRow {
                    id: r.get("id"),
                    unit_name: r.get("unit_name"),
                    name: r.get("name"),
                    model: r.get("model"),
                    category_label: catalog::class_label(&code),
                    value_fen: r.get("value_fen"),
                    usage_status: r.get("usage_status"),
                    review_label: review_label(&st),
                    review_status: st,
                    updated_at: r.get("updated_at"),
                }
            })
            .collect(),
        total,
    ))
}
