//! Platform settings (平台配置): the site's names, logo, contacts, the 备案 numbers every Chinese
//! government site shows in its footer, the home-page notice banner, booking defaults, upload
//! limits and the mail sender's name. Stored as one JSON document; effective at once on every
//! node through [`crate::published`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    error::{AppError, FieldErrors, Result},
    store::Db,
};

/// Everything the system admin sets. Missing keys in storage take these defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub site_name: String,
    pub site_name_en: String,
    /// A same-origin image path (`/static/…` or `/uploads/…`), empty for the text mark.
    pub logo_url: String,
    pub contact_phone: String,
    pub contact_email: String,
    pub address: String,
    /// ICP 备案号, e.g. 豫ICP备12345678号-1.
    pub icp_number: String,
    /// 公安机关备案号, e.g. 豫公网安备41100202000123号.
    pub police_record_number: String,
    pub footer_note: String,
    /// A one-line notice shown on the home page (empty: none).
    pub notice_banner: String,
    /// Booking defaults: opening hours (Asia/Shanghai, whole hours) for every instrument, and
    /// the slot length and how far ahead a newly created instrument starts with.
    pub booking_open_hour: u32,
    pub booking_close_hour: u32,
    pub booking_slot_minutes: u32,
    pub booking_max_days_ahead: u32,
    /// Upload limits in MB, within the platform's hard caps (photos 5, PDF 20).
    pub upload_photo_mb: u32,
    pub upload_pdf_mb: u32,
    pub mail_sender_name: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            site_name: "许昌市科研设施与仪器共享服务平台".into(),
            site_name_en: "Xuchang Research Facilities & Instruments Sharing Platform".into(),
            logo_url: String::new(),
            contact_phone: "0374-2968000".into(),
            contact_email: String::new(),
            address: "许昌市东城区龙兴路市民之家".into(),
            icp_number: String::new(),
            police_record_number: String::new(),
            footer_note: "主办单位：许昌市科学技术局　技术支持：许昌市科技信息中心".into(),
            notice_banner: String::new(),
            booking_open_hour: crate::money::bookings::OPEN_HOUR,
            booking_close_hour: crate::money::bookings::CLOSE_HOUR,
            booking_slot_minutes: 30,
            booking_max_days_ahead: 90,
            upload_photo_mb: (crate::uploads::MAX_PHOTO_BYTES / (1024 * 1024)) as u32,
            upload_pdf_mb: (crate::uploads::MAX_PDF_BYTES / (1024 * 1024)) as u32,
            mail_sender_name: "许昌市科研设施与仪器共享服务平台".into(),
        }
    }
}

/// The slot lengths one may choose (minutes).
pub const SLOT_MINUTES: [u32; 5] = [10, 15, 20, 30, 60];

/// The fields anyone may read (`GET /api/v1/settings`).
pub const PUBLIC_FIELDS: [&str; 10] = [
    "site_name",
    "site_name_en",
    "logo_url",
    "contact_phone",
    "contact_email",
    "address",
    "icp_number",
    "police_record_number",
    "footer_note",
    "notice_banner",
];

impl Settings {
    /// The public subset as JSON.
    pub fn public(&self) -> Value {
        let all = serde_json::to_value(self).unwrap_or_default();
        let mut out = Map::new();
        for k in PUBLIC_FIELDS {
            if let Some(v) = all.get(k) {
                out.insert(k.to_string(), v.clone());
            }
        }
        Value::Object(out)
    }

    pub fn photo_limit_bytes(&self) -> usize {
        (self.upload_photo_mb as usize * 1024 * 1024).min(crate::uploads::MAX_PHOTO_BYTES)
    }

    pub fn pdf_limit_bytes(&self) -> usize {
        (self.upload_pdf_mb as usize * 1024 * 1024).min(crate::uploads::MAX_PDF_BYTES)
    }
}

impl crate::instruments::InstrumentInput {
    /// A new instrument's slot length and how far ahead it may be booked, where the unit left
    /// them empty, are the platform's booking defaults.
    pub fn with_booking_defaults(mut self, s: &Settings) -> Self {
        if self.slot_minutes.trim().is_empty() {
            self.slot_minutes = s.booking_slot_minutes.to_string();
        }
        if self.max_days_ahead.trim().is_empty() {
            self.max_days_ahead = s.booking_max_days_ahead.to_string();
        }
        self
    }
}

/// The settings as the transaction `conn` sees them (upload limits checked while storing).
pub async fn load_in(conn: &mut crate::store::Conn) -> Result<Settings> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM platform_settings WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(body
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default())
}

/// The stored settings (defaults where nothing is stored).
pub async fn load(db: &Db) -> Result<Settings> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM platform_settings WHERE id = 1")
            .fetch_optional(&db.pool)
            .await?;
    Ok(body
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default())
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `豫ICP备12345678号` with an optional `-N` site number.
fn icp_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    let rest = &s[first.len_utf8()..];
    let Some(rest) = rest.strip_prefix("ICP备") else {
        return false;
    };
    let Some((num, tail)) = rest.split_once('号') else {
        return false;
    };
    crate::search::analysis::is_cjk(first)
        && (6..=12).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit())
        && (tail.is_empty()
            || tail.strip_prefix('-').is_some_and(|n| {
                !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
            }))
}

/// `豫公网安备41100202000123号` (14 digits; a space after 备 is accepted).
fn police_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    let rest = &s[first.len_utf8()..];
    let Some(rest) = rest.strip_prefix("公网安备") else {
        return false;
    };
    let rest = rest.trim_start();
    let Some(num) = rest.strip_suffix('号') else {
        return false;
    };
    crate::search::analysis::is_cjk(first)
        && num.len() == 14
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// Check every field; Chinese messages by field.
pub fn validate(s: &Settings) -> Result<()> {
    let mut e = FieldErrors::new();
    let mut put = |k: &str, m: &str| {
        e.entry(k.to_string()).or_insert_with(|| m.to_string());
    };
    if !(2..=40).contains(&chars(s.site_name.trim())) || has_control(&s.site_name) {
        put("site_name", "请填写平台名称（2–40 字）");
    }
    if chars(&s.site_name_en) > 120 || has_control(&s.site_name_en) {
        put("site_name_en", "英文名称不超过 120 个字符");
    }
    let logo = s.logo_url.trim();
    if !logo.is_empty()
        && (!(logo.starts_with("/static/") || logo.starts_with("/uploads/"))
            || logo.contains("..")
            || logo.contains('\\')
            || logo
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '"'))
    {
        put(
            "logo_url",
            "标志图片应为本站地址，以 /static/ 或 /uploads/ 开头",
        );
    }
    let phone = s.contact_phone.trim();
    if !phone.is_empty()
        && (!(7..=20).contains(&phone.len())
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || "-+() 转".contains(c)))
    {
        put("contact_phone", "联系电话格式不正确，例如 0374-2968000");
    }
    let email = s.contact_email.trim();
    if !email.is_empty()
        && (email.len() > 100
            || email.contains(char::is_whitespace)
            || !email
                .split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.')))
    {
        put(
            "contact_email",
            "联系邮箱格式不正确，例如 kjj@xuchang.gov.cn",
        );
    }
    if chars(&s.address) > 100 || has_control(&s.address) {
        put("address", "地址不超过 100 字");
    }
    if !icp_ok(s.icp_number.trim()) {
        put(
            "icp_number",
            "ICP 备案号格式应为“豫ICP备12345678号”或“豫ICP备12345678号-1”",
        );
    }
    if !police_ok(s.police_record_number.trim()) {
        put(
            "police_record_number",
            "公安备案号格式应为“豫公网安备41100202000123号”（14 位数字）",
        );
    }
    if chars(&s.footer_note) > 200 || has_control(&s.footer_note) {
        put("footer_note", "页脚说明不超过 200 字");
    }
    if chars(&s.notice_banner) > 200 || has_control(&s.notice_banner) {
        put("notice_banner", "首页通知横幅不超过 200 字");
    }
    if s.booking_open_hour >= s.booking_close_hour || s.booking_close_hour > 24 {
        put(
            "booking_close_hour",
            "开放时间应早于结束时间，且在 0–24 点之间",
        );
    }
    if !SLOT_MINUTES.contains(&s.booking_slot_minutes) {
        put(
            "booking_slot_minutes",
            "预约时段长度可选 10、15、20、30 或 60 分钟",
        );
    }
    if !(1..=365).contains(&s.booking_max_days_ahead) {
        put("booking_max_days_ahead", "可提前预约天数应在 1–365 之间");
    }
    let photo_cap = (crate::uploads::MAX_PHOTO_BYTES / (1024 * 1024)) as u32;
    let pdf_cap = (crate::uploads::MAX_PDF_BYTES / (1024 * 1024)) as u32;
    if !(1..=photo_cap).contains(&s.upload_photo_mb) {
        put(
            "upload_photo_mb",
            &format!("图片上传上限应在 1–{photo_cap} MB 之间"),
        );
    }
    if !(1..=pdf_cap).contains(&s.upload_pdf_mb) {
        put(
            "upload_pdf_mb",
            &format!("PDF 上传上限应在 1–{pdf_cap} MB 之间"),
        );
    }
    let sender = s.mail_sender_name.trim();
    if !(1..=40).contains(&chars(sender))
        || sender
            .chars()
            .any(|c| c.is_control() || "<>\"@".contains(c))
    {
        put(
            "mail_sender_name",
            "请填写邮件发件人名称（1–40 字，不含 < > \" @）",
        );
    }
    if e.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation {
            message: "平台配置填写有误".into(),
            fields: e,
        })
    }
}

/// Apply `patch` (keys of [`Settings`]; missing keys keep their value) over the current
/// settings: a wrong type is a field error, not a 500.
pub fn merged(current: &Settings, patch: &Map<String, Value>) -> Result<Settings> {
    let mut all = serde_json::to_value(current).map_err(anyhow::Error::from)?;
    let mut e = FieldErrors::new();
    if let Value::Object(obj) = &mut all {
        for (k, v) in patch {
            match obj.get(k) {
                Some(Value::String(_)) if !v.is_string() => {
                    e.insert(k.clone(), "应为文本".into());
                }
                Some(Value::Number(_)) if v.as_u64().is_none_or(|n| n > u32::MAX as u64) => {
                    e.insert(k.clone(), "应为非负整数".into());
                }
                Some(_) => {
                    obj.insert(k.clone(), v.clone());
                }
                None => {}
            }
        }
    }
    if !e.is_empty() {
        return Err(AppError::Validation {
            message: "平台配置填写有误".into(),
            fields: e,
        });
    }
    let mut s: Settings = serde_json::from_value(all).map_err(anyhow::Error::from)?;
    for f in [
        &mut s.site_name,
        &mut s.site_name_en,
        &mut s.logo_url,
        &mut s.contact_phone,
        &mut s.contact_email,
        &mut s.address,
        &mut s.icp_number,
        &mut s.police_record_number,
        &mut s.footer_note,
        &mut s.notice_banner,
        &mut s.mail_sender_name,
    ] {
        *f = f.trim().to_string();
    }
    Ok(s)
}

/// Validate and store new settings, audited, effective at once on every node.
pub async fn update(db: &Db, new: &Settings, by: i64, now: i64) -> Result<Settings> {
    validate(new)?;
    let body = serde_json::to_string(new).map_err(anyhow::Error::from)?;
    let mut tx = db.begin_write().await?;
    let before: Option<String> =
        sqlx::query_scalar("SELECT body FROM platform_settings WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
    let before =
        before.unwrap_or_else(|| serde_json::to_string(&Settings::default()).unwrap_or_default());
    if serde_json::from_str::<Settings>(&before).ok().as_ref() == Some(new) {
        // Nothing changed: nothing to record or publish.
        return Ok(new.clone());
    }
    sqlx::query("DELETE FROM platform_settings WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO platform_settings (id, body, updated_by, updated_at) VALUES (1, $1, $2, $3)",
    )
    .bind(&body)
    .bind(by)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::published::record_change(&mut tx, "settings", "platform", &before, &body, by, now)
        .await?;
    tx.commit().await?;
    crate::published::refresh(db).await?;
    Ok(new.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_numbers_in_the_official_shapes_pass() {
        assert!(icp_ok("豫ICP备12345678号"));
        assert!(icp_ok("豫ICP备12345678号-1"));
        assert!(icp_ok(""));
        assert!(!icp_ok("ICP备12345678号"));
        assert!(!icp_ok("豫ICP12345678"));
        assert!(police_ok("豫公网安备41100202000123号"));
        assert!(police_ok("豫公网安备 41100202000123号"));
        assert!(!police_ok("豫公网安备4110020200012号"));
    }

    #[test]
    fn the_defaults_are_valid_and_a_bad_patch_is_a_field_error() {
        let d = Settings::default();
        validate(&d).unwrap();
        let patch = serde_json::json!({"booking_slot_minutes": "thirty", "site_name": 3});
        let Err(AppError::Validation { fields, .. }) = merged(&d, patch.as_object().unwrap())
        else {
            panic!("refused")
        };
        assert!(fields.contains_key("booking_slot_minutes"));
        assert!(fields.contains_key("site_name"));
    }
}
